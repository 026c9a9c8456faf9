//go:build linux

package wine

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/config"
)

// headLibrarian makes the head librarian's key pair and writes the
// identity to C:\keys\head.key in the prefix (a test shortcut: a library
// makes it off the PC).
func headLibrarian(t *testing.T, p *prefix) (identityFile, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	h := p.host(`C:\keys\head.key`)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return `C:\keys\head.key`, id.Recipient().String()
}

// apiPipe reads booking.api_pipe from a config file in the prefix.
func apiPipe(t *testing.T, p *prefix, configPath string) string {
	t.Helper()
	b, err := os.ReadFile(p.host(configPath))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^api_pipe = '([^']*)'`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no api_pipe line:\n%s", configPath, b)
	}
	return string(m[1])
}

func mustContain(t *testing.T, r result, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout of %q lacks %q\n%v", r.args, w, r)
		}
	}
}

// TestCarrelExeUnderWine runs the real carrel.exe as a librarian does on
// a Windows PC: a config made with `config init --data-dir`, `run` in a
// console, and the CLI from a second process over the named pipe.
func TestCarrelExeUnderWine(t *testing.T) {
	p := newPrefix(t)
	exe := p.copyIn(carrelExe(t, versionOld), `C:\carrel\carrel.exe`)
	cfg := []string{"--config", `C:\x\carrel.toml`}
	carrel := func(args ...string) result {
		t.Helper()
		return p.ok(append([]string{exe}, args...)...)
	}

	r := carrel("version")
	if want := "carrel " + versionOld.Describe + " windows/amd64"; !strings.HasPrefix(r.stdout, want) {
		t.Errorf("carrel version = %q; want %q…", r.stdout, want)
	}

	// config init --data-dir C:\x: a config check accepts and run starts
	// on (its api_socket used to be C:\x\api.sock, which check refused),
	// with a pipe of its own so it never takes the installed service's
	// bookings.
	identity, recipient := headLibrarian(t, p)
	carrel(append([]string{"config", "init", "--data-dir", `C:\x`, "--recipient", recipient, "--out"}, cfg[1])...)
	mustContain(t, carrel(append([]string{"config", "check"}, cfg...)...), "valid")
	pipe := apiPipe(t, p, cfg[1])
	if pipe != config.PipeFor(`C:\x`) || pipe == config.DefaultPipe {
		t.Errorf("api_pipe = %q; want %q, not the service's %s", pipe, config.PipeFor(`C:\x`), config.DefaultPipe)
	}

	daemon := p.start(append([]string{exe, "run"}, cfg...)...)
	daemon.waitFor("carrel started")
	p.spendFirstConnection(pipe)

	// A second carrel on the same data folder is refused.
	second := p.run(append([]string{exe, "run"}, cfg...)...)
	if second.code == 0 || !strings.Contains(second.stderr, `another carrel is already running on data folder "C:\\x"`) {
		t.Errorf("a second run on C:\\x: %v\nwant it refused: another carrel is already running", second)
	}

	// The CLI in a second process, over the named pipe.
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	mustContain(t, carrel(append([]string{"booking", "start", "--ref", "wine-1"}, cfg...)...), "wine-1")
	mustContain(t, carrel(append([]string{"booking", "list"}, cfg...)...), "wine-1")
	carrel(append([]string{"booking", "end", "--ref", "wine-1"}, cfg...)...)
	list := carrel(append([]string{"booking", "list", "--format", "csv"}, cfg...)...)
	if !regexp.MustCompile(`(?m)^[^\n]*wine-1,[^,\n]+,[0-9T:Z+-]+[^\n]*$`).MatchString(list.stdout) || strings.Contains(list.stdout, "open") {
		t.Errorf("booking list after the end:\n%s\nwant wine-1 with an end time", list.stdout)
	}
	mustContain(t, carrel(append([]string{"status"}, cfg...)...), "bookings-only", "1 stored (0 open)")
	carrel(append([]string{"audit", "verify"}, cfg...)...)
	mustContain(t, carrel(append([]string{"audit", "checkpoint"}, cfg...)...), "carrel/")

	// The court-order export of a window with the booking and no traffic,
	// and its verification.
	end := time.Now().UTC().Add(time.Minute).Truncate(time.Second)
	if err := os.MkdirAll(p.host(`C:\export`), 0o755); err != nil {
		t.Fatal(err)
	}
	ex := carrel(append([]string{"export", "--order", "ORD-1", "--court", "Retten i Test", "--requester", "Politi",
		"--exporter", "Head Librarian", "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339),
		"--identity", identity, "--out", `C:\export\ORD-1`}, cfg...)...)
	mustContain(t, ex, "1 booking(s); 0 sealed segment(s)")
	mustContain(t, carrel("export", "verify", "--identity", identity, `C:\export\ORD-1`), "ORD-1")

	if err := daemon.interrupt(); err != nil {
		t.Errorf("carrel run after Ctrl+C: %v\n%s", err, daemon.out)
	}
	if !strings.Contains(daemon.out.String(), "carrel stopped") {
		t.Errorf("carrel run did not log its clean stop:\n%s", daemon.out)
	}
}

// TestCarrelServiceUnderWine installs, starts, queries, stops and removes
// carrel through the service manager (Wine's services.exe) with the
// `carrel service` commands.
func TestCarrelServiceUnderWine(t *testing.T) {
	p := newPrefix(t)
	exe := p.copyIn(carrelExe(t, versionOld), `C:\carrel\carrel.exe`)
	cfg := []string{"--config", `C:\svc\carrel.toml`}
	carrel := func(args ...string) result {
		t.Helper()
		return p.ok(append([]string{exe}, args...)...)
	}
	_, recipient := headLibrarian(t, p)
	carrel(append([]string{"config", "init", "--data-dir", `C:\svc`, "--recipient", recipient, "--out"}, cfg[1])...)
	pipe := apiPipe(t, p, cfg[1])

	in := carrel(append([]string{"service", "install"}, cfg...)...)
	mustContain(t, in, "installed the carrel service")
	// Wine cannot create local groups (its net.exe has no localgroup
	// command, prints its usage and exits 0; nothing in Wine keeps local
	// groups): install must say the group is missing and how to make it,
	// never that it created it.
	if strings.Contains(in.stdout, "created the local group") ||
		!strings.Contains(in.stderr, `warning: creating the local group "carrel-booking"`) ||
		!strings.Contains(in.stderr, "net localgroup carrel-booking /add") {
		t.Errorf("service install under Wine, which cannot create groups:\n%v\nwant a warning naming the missing group and how to create it", in)
	}
	// The registered command line says it runs as a service: under Wine,
	// services.exe does not run services in session 0, so carrel cannot
	// tell from its session.
	reg := p.regValues(`HKLM\System\CurrentControlSet\Services\carrel`)
	if img := reg["ImagePath"]; !strings.Contains(img, `carrel.exe run --service --config C:\svc\carrel.toml`) {
		t.Errorf("ImagePath = %q; want carrel.exe run --service --config C:\\svc\\carrel.toml", img)
	}
	if reg["Start"] != "0x2" {
		t.Errorf("Start = %q; want 0x2 (automatic)", reg["Start"])
	}

	mustContain(t, carrel(append([]string{"service", "start"}, cfg...)...), "start done")
	p.waitService("carrel", "RUNNING")
	p.spendFirstConnection(pipe)
	mustContain(t, carrel(append([]string{"service", "status"}, cfg...)...), "carrel service: running")
	mustContain(t, carrel(append([]string{"status"}, cfg...)...), "service:         running since", "version "+versionOld.Describe,
		`booking-client group does not exist: "carrel-booking"`)
	carrel(append([]string{"booking", "start", "--ref", "svc-1"}, cfg...)...)
	mustContain(t, carrel(append([]string{"booking", "list"}, cfg...)...), "svc-1")

	mustContain(t, carrel(append([]string{"service", "stop"}, cfg...)...), "stop done")
	p.waitService("carrel", "STOPPED")
	if st := p.run(append([]string{exe, "service", "status"}, cfg...)...); st.code != 3 || !strings.Contains(st.stdout, "carrel service: stopped") {
		t.Errorf("service status of a stopped service: %v\nwant \"stopped\", exit 3", st)
	}
	// The stop request reached carrel's clean shutdown: the audit log says
	// so.
	mustContain(t, carrel(append([]string{"audit", "list", "--kind", "service.stop"}, cfg...)...), "service.stop")
	carrel(append([]string{"audit", "verify"}, cfg...)...)

	mustContain(t, carrel(append([]string{"service", "uninstall"}, cfg...)...), "uninstalled the carrel service")
	p.waitService("carrel", "")
	if st := p.run(append([]string{exe, "service", "status"}, cfg...)...); st.code != 3 || !strings.Contains(st.stdout, "not installed") {
		t.Errorf("service status after uninstall: %v\nwant \"not installed\", exit 3", st)
	}
	if _, err := os.Stat(p.host(`C:\svc\bookings.db`)); err != nil {
		t.Errorf("uninstall must keep the data folder: %v", err)
	}
}
