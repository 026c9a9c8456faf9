package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestBookingCLIAsGroupMember installs carrel as the package does — the
// config /etc/carrel/carrel.toml root-only (0600), the socket at the
// default /run/carrel/api.sock — in a private mount namespace (an overlay
// on /etc, a tmpfs on /run), and runs the CLI as other accounts:
// a booking-client group member books, ends, lists and reads status
// without any flag; a patron look-up is refused to the member and works for
// root, finding exactly that card's bookings, audited without the card;
// an account outside the group is refused with a hint.
func TestBookingCLIAsGroupMember(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "unshare", "nsenter", "setpriv", "groupadd", "groupdel")
	m := memberSetup(t)
	b, err := os.ReadFile(m.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), m.sock, "/run/carrel/api.sock", 1)
	if err := os.WriteFile(m.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	upper, work := filepath.Join(m.dir, "etc-upper"), filepath.Join(m.dir, "etc-work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	script := `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/carrel
mount -t overlay overlay -o lowerdir=/etc,upperdir="$UPPER",workdir="$WORK" /etc
mkdir -m 0755 /etc/carrel
install -m 0600 "$CFG" /etc/carrel/carrel.toml
exec "$EXE" run
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "CARREL_TEST_MAIN=1", "TZ=UTC", "UPPER="+upper, "WORK="+work, "CFG="+m.cfgPath, "EXE="+m.exe)
	svc := spawn(t, cmd)
	if !svc.waitLog(t, "carrel started") {
		t.Fatalf("the service did not start:\n%s", svc.log)
	}
	pid := fmt.Sprint(svc.cmd.Process.Pid)

	// run runs the CLI in the service's mount namespace as an account:
	// "root", "member" (in the booking-client group) or "outsider".
	run := func(who, stdin string, args ...string) (string, int) {
		t.Helper()
		argv := []string{"-t", pid, "-m", "--"}
		switch who {
		case "member":
			argv = append(argv, "setpriv", "--reuid=65534", "--regid=65534", "--groups="+m.gid)
		case "outsider":
			argv = append(argv, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
		}
		argv = append(argv, "env", "CARREL_TEST_MAIN=1", "TZ=UTC", m.exe)
		c := exec.Command("nsenter", append(argv, args...)...)
		c.Stdin = strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	expect := func(who string, wantCode int, want string, args ...string) string {
		t.Helper()
		out, code := run(who, "", args...)
		if code != wantCode || !strings.Contains(out, want) {
			t.Errorf("%s: carrel %s = exit %d\n%s\nwant exit %d containing %q", who, strings.Join(args, " "), code, out, wantCode, want)
		}
		return out
	}

	// The config is what the package installs: root's alone.
	if out, code := run("member", "", "config", "check", "/etc/carrel/carrel.toml"); code == 0 {
		t.Fatalf("the member can read the config; the test would not show anything:\n%s", out)
	}
	expect("member", 0, "started booking member-1", "booking", "start", "--ref", "member-1")
	expect("member", 0, "ended booking member-1", "booking", "end", "--ref", "member-1")
	expect("member", 0, "started booking card7-a", "booking", "start", "--ref", "card7-a", "--patron", "CARD-7")
	expect("member", 0, "started booking card8-a", "booking", "start", "--ref", "card8-a", "--patron", "CARD-8")
	expect("member", 0, "started booking card7-b", "booking", "start", "--ref", "card7-b", "--patron", "CARD-7")
	expect("member", 0, "member-1", "booking", "list")
	expect("member", 0, "mode:", "status")
	// An explicit --config must be readable; --api needs no config.
	expect("member", 1, "hint: this command needs only the service's address", "booking", "list", "--config", "/etc/carrel/carrel.toml")
	expect("member", 0, "member-1", "booking", "list", "--api", "/run/carrel/api.sock", "--config", "/nonexistent.toml")
	// A patron's bookings are for staff to look up.
	expect("member", 1, "only root/Administrators may look up a patron's bookings", "booking", "list", "--patron", "CARD-7")
	// Outside the group: refused, with both hints.
	out := expect("outsider", 1, "permission denied", "booking", "start", "--ref", "outsider-1")
	if !strings.Contains(out, "default API address /run/carrel/api.sock") || !strings.Contains(out, "hint: only root") {
		t.Errorf("outsider's refusal lacks the hints:\n%s", out)
	}
	t.Logf("outsider:\n%s", out)

	// Root finds exactly one card's bookings, from the flag or stdin.
	out = expect("root", 0, "", "booking", "list", "--patron", "CARD-7", "--format", "json")
	var bs []api.Booking
	if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) != 2 || bs[0].Ref != "card7-a" || bs[1].Ref != "card7-b" {
		t.Errorf("root: booking list --patron CARD-7 = %s (%v); want card7-a and card7-b", out, err)
	}
	out, code := run("root", "CARD-8\n", "booking", "list", "--patron", "-", "--format", "csv")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "card8-a") {
		t.Errorf("root: booking list --patron - (CARD-8 on stdin) = %d\n%s\nwant card8-a only", code, out)
	}
	expect("root", 0, "pc  ref  start", "booking", "list", "--patron", "NO-SUCH-CARD")

	svc.stop(t)
	// Each look-up is audited with who looked and how many were found; the
	// member's attempt as a refusal. The card is nowhere.
	out, code = carrelRun(t, "audit", "list", "--config", m.cfgPath, "--kind", "booking.patron-lookup,api.refused")
	if code != 0 {
		t.Fatalf("audit list: %d %s", code, out)
	}
	for _, want := range []string{"account=root found=2 uid=0", "account=root found=1 uid=0", "account=root found=0 uid=0",
		"account=nobody uid=65534 why=not-admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "booking.patron-lookup"); n != 3 {
		t.Errorf("%d booking.patron-lookup entries; want 3:\n%s", n, out)
	}
	for _, f := range []string{audit.DBFile, audit.DBFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(m.dir, "data", f))
		if err != nil && f == audit.DBFile {
			t.Fatal(err)
		}
		for _, card := range []string{"CARD-7", "CARD-8", "NO-SUCH-CARD"} {
			if bytes.Contains(b, []byte(card)) {
				t.Errorf("%s holds the card %s", f, card)
			}
		}
	}
	if strings.Contains(svc.log.String(), "CARD-") {
		t.Errorf("the service log holds a card:\n%s", svc.log)
	}
}
