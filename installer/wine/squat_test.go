//go:build linux

package wine

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// squatterOwner is the owner the squatter names in its pipe's security
// descriptor: the Wine account's primary group ("None"). Wine has a
// single account, and every program in a prefix runs as that account, an
// elevated Administrator, so no squatter here can be what a patron is on
// Windows: another, unprivileged account, whose pipes Windows makes owned
// by that account. The nearest Wine offers is an owner that is neither
// SYSTEM, nor Administrators, nor the client's own account, which is what
// carrel checks; the group is one the account's token may name as owner
// (SE_GROUP_OWNER), so Windows would allow it too. What Wine cannot show:
// that Windows lets a program name as owner only its own account or a
// group its token holds with the owner attribute (Wine lets any SID be
// named, even SYSTEM's), which is what makes the owner proof.
const squatterOwner = "S-1-5-21-0-0-0-513"

// TestPipeSquatterUnderWine: while the carrel service is down (stopped,
// or not yet started at boot), another program makes carrel's named pipe
// first. The booking CLI must not hand it booking data (a patron's card
// number), and carrel must refuse to start beside it, naming it, rather
// than share the name: clients would be connected to either.
func TestPipeSquatterUnderWine(t *testing.T) {
	p := newPrefix(t)
	exe := p.copyIn(carrelExe(t, versionOld), `C:\carrel\carrel.exe`)
	p.copyIn(helpers.squatpipe, `C:\tools\squatpipe.exe`)
	cfg := []string{"--config", `C:\x\carrel.toml`}
	_, recipient := headLibrarian(t, p)
	p.ok(append([]string{exe, "config", "init", "--data-dir", `C:\x`, "--recipient", recipient, "--out"}, cfg[1])...)
	pipe := apiPipe(t, p, cfg[1])
	const card = "4711-0815"

	// The client side: `carrel booking start --patron` and `carrel status`
	// connect, find the pipe owned by an account that cannot be carrel's,
	// and close it without a byte sent.
	for _, sq := range []struct{ name, sddl, who string }{
		{"owned by another account", "O:" + squatterOwner + "D:(A;;GA;;;WD)", squatterOwner},
		// Wine leaves a pipe made without a security descriptor without
		// an owner (Windows gives it the maker's default owner).
		{"without an owner", "-", "the pipe names no owner"},
	} {
		t.Run(sq.name, func(t *testing.T) {
			p := p.in(t)
			squatter := p.start(`C:\tools\squatpipe.exe`, pipe, sq.sddl)
			squatter.waitFor("squatting ")
			for i, args := range [][]string{
				{"booking", "start", "--ref", "squat-1", "--patron", card},
				{"status"},
			} {
				r := p.run(append(append([]string{exe}, args...), cfg...)...)
				want := regexp.MustCompile(regexp.QuoteMeta(strings.ReplaceAll(pipe, `\`, `\\`)) + `" is served by [^\n]*` +
					regexp.QuoteMeta(sq.who) + `[^\n]*, not the carrel service; refusing to send booking data`)
				if r.code == 0 || !want.MatchString(r.stderr) {
					t.Errorf("carrel %s with the pipe squatted:\n%v\nwant a refusal matching %s", args[0], r, want)
				} else if i == 0 {
					t.Logf("refused: %s", strings.TrimSpace(r.stderr))
				}
				// The client connected (that is how it learnt the owner)
				// and went without sending anything.
				squatter.waitForCount("client sent ", i+1)
			}
			if out := squatter.out.String(); strings.Contains(out, card) || regexp.MustCompile(`client sent [1-9]`).MatchString(out) {
				t.Errorf("the squatter received booking data:\n%s", out)
			}
			squatter.kill()
		})
	}

	// The service side: carrel refuses to start while the name is taken,
	// and names the program that holds it. Windows refuses the pipe's
	// first instance to carrel by itself (go-winio creates it with
	// FILE_CREATE, which is FILE_FLAG_FIRST_PIPE_INSTANCE), so this reaches
	// carrel's explanation after that refusal; Wine does not refuse a
	// first instance of an existing pipe name, so here it is carrel's own
	// check for the name, made before creating the pipe, that refuses.
	t.Run("service start", func(t *testing.T) {
		p := p.in(t)
		squatter := p.start(`C:\tools\squatpipe.exe`, pipe, "O:"+squatterOwner+"D:(A;;GA;;;WD)")
		squatter.waitFor("squatting ")
		pid := regexp.MustCompile(`as process (\d+)`).FindStringSubmatch(squatter.out.String())
		if pid == nil {
			t.Fatalf("the squatter did not say its process id:\n%s", squatter.out)
		}
		daemon := p.start(append([]string{exe, "run"}, cfg...)...)
		if daemon.exitedOr("carrel started") {
			t.Errorf("carrel started beside the squatter's pipe:\n%s", daemon.out)
			daemon.interrupt()
		} else if daemon.err == nil {
			t.Errorf("carrel run beside a squatter exited 0:\n%s", daemon.out)
		}
		out := daemon.out.String()
		t.Logf("carrel run beside the squatter:\n%s", out)
		for _, want := range []string{"already exists", `process ` + pid[1] + ` "C:\\tools\\squatpipe.exe"`, squatterOwner} {
			if !strings.Contains(out, want) {
				t.Errorf("carrel run beside a squatter lacks %q:\n%s", want, out)
			}
		}
		if regexp.MustCompile(`client sent [1-9]`).MatchString(squatter.out.String()) {
			t.Errorf("carrel sent the squatter data:\n%s", squatter.out)
		}
		squatter.kill()
	})

	// With the squatter gone, carrel starts on the pipe and the same CLI
	// sends the patron's booking: the check accepts carrel's own pipe.
	t.Run("after the squatter", func(t *testing.T) {
		p := p.in(t)
		daemon := p.start(append([]string{exe, "run"}, cfg...)...)
		daemon.waitFor("carrel started")
		p.spendFirstConnection(pipe)
		r := p.ok(append([]string{exe, "booking", "start", "--ref", "after-1", "--patron", card}, cfg...)...)
		mustContain(t, r, "after-1")
		if err := daemon.interrupt(); err != nil {
			t.Errorf("carrel run after Ctrl+C: %v\n%s", err, daemon.out)
		}
	})
}

// waitForCount waits until the program has written s at least n times.
func (pr *proc) waitForCount(s string, n int) {
	pr.t.Helper()
	deadline := time.After(waitDeadline)
	for {
		changed := pr.out.changed()
		if strings.Count(pr.out.String(), s) >= n {
			return
		}
		select {
		case <-pr.done:
			if strings.Count(pr.out.String(), s) < n {
				pr.t.Fatalf("%q exited (%v) having written %q fewer than %d times:\n%s", pr.cmd.Args, pr.err, s, n, pr.out)
			}
		case <-changed:
		case <-deadline:
			pr.t.Fatalf("%q did not write %q %d times within %s; it wrote:\n%s", pr.cmd.Args, s, n, waitDeadline, pr.out)
		}
	}
}

// exitedOr waits until the program exits (false) or writes s (true).
func (pr *proc) exitedOr(s string) bool {
	pr.t.Helper()
	deadline := time.After(waitDeadline)
	for {
		changed := pr.out.changed()
		if strings.Contains(pr.out.String(), s) {
			return true
		}
		select {
		case <-pr.done:
			return strings.Contains(pr.out.String(), s)
		case <-changed:
		case <-deadline:
			pr.t.Fatalf("%q neither exited nor wrote %q within %s; it wrote:\n%s", pr.cmd.Args, s, waitDeadline, pr.out)
		}
	}
}

// kill ends the program (a Windows program under Wine is its wine
// process) and waits until it has gone, and with it its pipe.
func (pr *proc) kill() {
	pr.t.Helper()
	pr.cmd.Process.Kill()
	<-pr.done
}
