// Wine runs on Linux; so do these tests.

//go:build linux

package wine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/installer/pack"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// Deadlines. They only stop a hang: every wait below ends on an event (a
// log line, the pipe taking a connection, the service manager's state).
const (
	cmdDeadline  = 3 * time.Minute  // one Wine command, e.g. carrel.exe booking list
	msiDeadline  = 6 * time.Minute  // one msiexec run
	waitDeadline = 3 * time.Minute  // a state to be reached
	bootDeadline = 10 * time.Minute // wineboot --init of the cached prefix
)

// The versions the tests build: the CLI tests and the first MSI use
// versionOld, the upgrade goes to versionNew.
var (
	versionOld = pack.ParseVersion("v0.9.1-3-gabc1234", 40)
	versionNew = pack.ParseVersion("v0.9.2", 41)
)

var (
	workDir string // removed after the tests

	buildMu sync.Mutex
	exes    = map[pack.Version]string{} // carrel.exe per version
	msis    = map[pack.Version]string{}

	helpersOnce sync.Once
	helpers     struct{ dll, pipeopen, fail, squatpipe, wpcapOld string }
	helpersErr  error
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithWorkDir(m, "carrel-wine-test-", &workDir)) }

// carrelExe is carrel.exe for v, built once per test run as `make windows`
// builds it (cgo with mingw, the version resource linked in).
func carrelExe(t *testing.T, v pack.Version) string {
	t.Helper()
	testenv.NeedTool(t, pack.MinGW, pack.Windres)
	buildMu.Lock()
	defer buildMu.Unlock()
	if exe, ok := exes[v]; ok {
		return exe
	}
	exe := filepath.Join(workDir, "exe-"+v.Describe, "carrel.exe")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := pack.BuildWindows(testenv.RepoRoot(t), v, exe); err != nil {
		t.Fatalf("building carrel.exe %s: %v", v.Describe, err)
	}
	t.Logf("built carrel.exe %s in %s", v.Describe, time.Since(start).Round(time.Second))
	exes[v] = exe
	return exe
}

// carrelMSI is the MSI of v around carrelExe(v), built once per test run
// as `make msi` builds it.
func carrelMSI(t *testing.T, v pack.Version) string {
	t.Helper()
	testenv.NeedTool(t, "wixl", "msibuild")
	exe := carrelExe(t, v)
	buildMu.Lock()
	defer buildMu.Unlock()
	if msi, ok := msis[v]; ok {
		return msi
	}
	msi, err := pack.MSI(pack.MSIOptions{Exe: exe, Version: v, OutDir: filepath.Join(workDir, "msi-"+v.Describe)})
	if err != nil {
		t.Fatalf("building the MSI %s: %v", v.Describe, err)
	}
	msis[v] = msi
	return msi
}

// rebuildMSI builds the MSI of v again, as a second `make msi` of the same
// commit does: the same version with a new product code.
func rebuildMSI(t *testing.T, v pack.Version) string {
	t.Helper()
	exe := carrelExe(t, v)
	msi, err := pack.MSI(pack.MSIOptions{Exe: exe, Version: v, OutDir: filepath.Join(t.TempDir(), "rebuild")})
	if err != nil {
		t.Fatalf("building the MSI %s again: %v", v.Describe, err)
	}
	return msi
}

// buildHelpers compiles the small Windows programs in testdata/ with
// mingw, once per test run.
func buildHelpers(t *testing.T) {
	t.Helper()
	testenv.NeedTool(t, pack.MinGW)
	helpersOnce.Do(func() {
		dir := filepath.Join(workDir, "helpers")
		if helpersErr = os.MkdirAll(dir, 0o755); helpersErr != nil {
			return
		}
		helpers.dll = filepath.Join(dir, "bcryptprimitives.dll")
		helpers.pipeopen = filepath.Join(dir, "pipeopen.exe")
		helpers.fail = filepath.Join(dir, "fail.exe")
		helpers.squatpipe = filepath.Join(dir, "squatpipe.exe")
		// Named as the DLL it stands in for.
		helpers.wpcapOld = filepath.Join(dir, "old-winpcap", "wpcap.dll")
		if helpersErr = os.MkdirAll(filepath.Dir(helpers.wpcapOld), 0o755); helpersErr != nil {
			return
		}
		for _, c := range [][]string{
			{"-shared", "-O2", "-o", helpers.dll, "testdata/bcryptprimitives.c", "-ladvapi32"},
			{"-O2", "-municode", "-o", helpers.pipeopen, "testdata/pipeopen.c"},
			{"-O2", "-o", helpers.fail, "testdata/fail.c"},
			{"-O2", "-municode", "-o", helpers.squatpipe, "testdata/squatpipe.c", "-ladvapi32"},
			{"-shared", "-O2", "-o", helpers.wpcapOld, "testdata/wpcap_old.c"},
		} {
			if out, err := exec.Command(pack.MinGW, c...).CombinedOutput(); err != nil {
				helpersErr = fmt.Errorf("%s %v: %v\n%s", pack.MinGW, c, err, out)
				return
			}
		}
	})
	if helpersErr != nil {
		t.Fatal(helpersErr)
	}
}

// prefix is a Wine prefix of one test: its own C: drive, registry,
// service manager and wineserver, removed (and the wineserver killed with
// every Windows process in it) when the test ends.
//
// Its methods fail t, the test that made it. A subtest must use its own
// view, p.in(t): FailNow (t.Fatal) on the parent from a subtest's
// goroutine does not stop the subtest cleanly, it ends it with "test
// executed panic(nil) or runtime.Goexit" and blames the parent.
type prefix struct {
	t   *testing.T
	dir string   // WINEPREFIX
	env []string // the environment of every Wine command
}

// newPrefix returns a fresh copy of the cached, initialised prefix, with
// the bcryptprimitives.dll stand-in in its system32 and pipeopen.exe in
// C:\tools.
func newPrefix(t *testing.T) *prefix {
	t.Helper()
	testenv.NeedTool(t, "wine", "wineserver", "wineboot", "cp")
	buildHelpers(t)
	pristine := pristinePrefix(t)
	dir := filepath.Join(t.TempDir(), "prefix")
	start := time.Now()
	if out, err := exec.Command("cp", "-a", pristine, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the Wine prefix: %v: %s", err, out)
	}
	p := &prefix{t: t, dir: dir, env: wineEnv(dir)}
	// Registered after t.TempDir, so it runs before the folder is removed.
	t.Cleanup(p.kill)
	p.copyIn(helpers.dll, `C:\windows\system32\bcryptprimitives.dll`)
	p.copyIn(helpers.pipeopen, `C:\tools\pipeopen.exe`)
	p.boot()
	t.Logf("Wine prefix copied and booted in %s", time.Since(start).Round(100*time.Millisecond))
	return p
}

// boot starts the prefix's wineserver and its system programs, as
// Windows boots: services.exe starts the automatic-start services.
//
// The wineserver is persistent, one for the whole boot: by default it
// exits a few seconds after its last program, and the next program starts
// a new one, whose services.exe starts every automatic-start service again
// (a reboot the test did not ask for). The wineserver and the system
// programs (services.exe, winedevice.exe …) live until kill, and keep the
// standard output and error they were started with: a log file, not the
// pipe of some test command, which would then never see its output end.
func (p *prefix) boot() {
	p.t.Helper()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(p.dir), "wineserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer log.Close()
	for _, args := range [][]string{{"wineserver", "--persistent"}, {"wine", "wineboot"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env, cmd.Stdout, cmd.Stderr = p.env, log, log
		if err := cmd.Run(); err != nil {
			out, _ := os.ReadFile(log.Name())
			p.t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
}

// in is the same prefix whose methods fail t (a subtest of p's test):
// the same Wine prefix and wineserver, still removed when p's test ends.
// Programs it starts are ended when t ends.
func (p *prefix) in(t *testing.T) *prefix {
	v := *p
	v.t = t
	return &v
}

// reboot kills every program in the prefix, services included, as a
// power cut does, and boots it again.
func (p *prefix) reboot() {
	p.t.Helper()
	p.kill()
	p.boot()
}

// wineEnv is the environment of Wine commands on the prefix dir.
func wineEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WINE") || strings.HasPrefix(kv, "DISPLAY=") || strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"WINEPREFIX="+dir, "WINEARCH=win64",
		// Wine's errors only (no fixme, warn or trace): a program that
		// Wine fails to load, or that dies in Wine, exits with no word of
		// its own, and these lines, in the command's standard error, are
		// then the only account of it. Seen once: `carrel audit list`
		// exited 1 with empty output while `carrel run` ran, under -all.
		// The "-all" first also keeps Debian's wine script from printing
		// its wine32 hint on every call.
		"WINEDEBUG=-all,err+all",
		// mscoree and mshtml off: wineboot would try to fetch Mono and
		// Gecko. Wine's wpcap.dll stays on: it lacks functions Npcap has
		// (pcap_setdirection), which used to crash carrel at start
		// (gopacket/pcap panicked in its init); carrel now loads it only
		// to capture, and runs with it (npcap_test.go).
		"WINEDLLOVERRIDES=mscoree=d;mshtml=d")
}

// pristinePrefix returns the initialised Wine prefix cached in the test
// cache (testenv.CacheDir), keyed by the Wine version, making
// it first when it is missing (wineboot --init: about 15-40 s).
func pristinePrefix(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("wine", "--version").Output()
	if err != nil {
		t.Fatalf("wine --version: %v", err)
	}
	version := regexp.MustCompile(`[^A-Za-z0-9.+-]+`).ReplaceAllString(strings.TrimSpace(string(out)), "_")
	cache := testenv.CacheDir(t, "wineprefix")
	pristine := filepath.Join(cache, version)
	defer testenv.LockFile(t, pristine+".lock")()
	if _, err := os.Stat(filepath.Join(pristine, "system.reg")); err == nil {
		return pristine
	}
	start := time.Now()
	tmp := pristine + ".tmp"
	os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), bootDeadline)
	defer cancel()
	env := wineEnv(tmp)
	for _, args := range [][]string{{"wineboot", "--init"}, {"wineserver", "--wait"}} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			t.Fatalf("%v (WINEPREFIX=%s): %v\n%s", args, tmp, err, out)
		}
	}
	if err := os.Rename(tmp, pristine); err != nil {
		t.Fatal(err)
	}
	t.Logf("wineboot --init: %s (cached in %s)", time.Since(start).Round(time.Second), pristine)
	return pristine
}

// kill ends the prefix's wineserver and with it every Windows process in
// the prefix (services included), and waits until it is gone.
func (p *prefix) kill() {
	for _, args := range [][]string{{"wineserver", "--kill"}, {"wineserver", "--wait"}} {
		ctx, cancel := context.WithTimeout(context.Background(), cmdDeadline)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = p.env
		cmd.Run() // no wineserver is running when the test started none
		cancel()
	}
}

// host is the Linux path of a path on the prefix's C: drive.
func (p *prefix) host(win string) string {
	rest, ok := strings.CutPrefix(strings.ToUpper(win[:min(3, len(win))]), `C:\`)
	if !ok || rest != "" {
		p.t.Fatalf("prefix.host(%q): not a path on C:", win)
	}
	return filepath.Join(p.dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(win[3:], `\`, "/")))
}

// copyIn copies the Linux file src to the Windows path dst on C:.
func (p *prefix) copyIn(src, dst string) string {
	p.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		p.t.Fatal(err)
	}
	h := p.host(dst)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(h, b, 0o755); err != nil {
		p.t.Fatal(err)
	}
	return dst
}

// winPath is the Windows path (on Wine's Z: drive) of a Linux path.
func winPath(host string) string { return "Z:" + strings.ReplaceAll(host, "/", `\`) }

// result is what one Wine command did.
type result struct {
	args           []string
	stdout, stderr string
	code           int // the exit code, modulo 256 (Linux keeps only its low byte)
}

func (r result) String() string {
	return fmt.Sprintf("%q exited %d\nstdout:\n%s\nstderr:\n%s", r.args, r.code, r.stdout, r.stderr)
}

// run runs a Windows program in the prefix (`wine args...`) and waits for
// it to exit.
func (p *prefix) run(args ...string) result {
	p.t.Helper()
	return p.runWithin(cmdDeadline, args...)
}

func (p *prefix) runWithin(deadline time.Duration, args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wine", args...)
	cmd.Env = p.env
	// Files, not pipes: a Windows program may start one that outlives it
	// (Wine's explorer.exe, the MSI server) and keeps its standard output
	// open; reading a pipe would then not end when the program does.
	stdout, stderr := p.outFile(), p.outFile()
	defer stdout.Close()
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	r := result{args: args, stdout: readAll(p.t, stdout), stderr: readAll(p.t, stderr)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		p.t.Fatalf("%q did not exit within %s (a hang)\nstdout:\n%s\nstderr:\n%s", args, deadline, r.stdout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		p.t.Fatalf("running %q: %v", args, err)
	}
	return r
}

// outFile is a new, empty file for a command's output.
func (p *prefix) outFile() *os.File {
	p.t.Helper()
	f, err := os.CreateTemp(filepath.Dir(p.dir), "out-")
	if err != nil {
		p.t.Fatal(err)
	}
	os.Remove(f.Name()) // open until closed; nothing else needs its name
	return f
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ok runs args and fails the test unless they exit 0.
func (p *prefix) ok(args ...string) result {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("%v", r)
	}
	return r
}

// proc is a Windows program running in the background.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *watchedBuffer // standard output and error
	done chan struct{}  // closed when it exited
	err  error          // its exit, after done
}

// start starts `wine args...` in the background; the prefix's cleanup
// ends it if the test does not.
func (p *prefix) start(args ...string) *proc {
	p.t.Helper()
	cmd := exec.Command("wine", args...)
	cmd.Env = p.env
	out := newWatchedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	// After it exits, stop reading its output even if a program it
	// started still holds the pipe (see run).
	cmd.WaitDelay = waitDeadline
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting %q: %v", args, err)
	}
	pr := &proc{t: p.t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
		out.wake()
	}()
	p.t.Cleanup(func() {
		select {
		case <-pr.done:
		default:
			cmd.Process.Kill()
			<-pr.done
		}
	})
	return pr
}

// waitFor waits until the program has written a line containing s, and
// fails the test when it exits first.
func (pr *proc) waitFor(s string) {
	pr.t.Helper()
	deadline := time.After(waitDeadline)
	for {
		changed := pr.out.changed()
		if strings.Contains(pr.out.String(), s) {
			return
		}
		select {
		case <-pr.done:
			if !strings.Contains(pr.out.String(), s) {
				pr.t.Fatalf("%q exited (%v) without writing %q; it wrote:\n%s", pr.cmd.Args, pr.err, s, pr.out)
			}
		case <-changed:
		case <-deadline:
			pr.t.Fatalf("%q did not write %q within %s; it wrote:\n%s", pr.cmd.Args, s, waitDeadline, pr.out)
		}
	}
}

// interrupt sends Ctrl+C (SIGINT to the Wine process, which Wine delivers
// as a console control event) and waits for the program to exit.
func (pr *proc) interrupt() error {
	pr.t.Helper()
	if err := pr.cmd.Process.Signal(syscall.SIGINT); err != nil {
		pr.t.Fatal(err)
	}
	select {
	case <-pr.done:
		return pr.err
	case <-time.After(waitDeadline):
		pr.t.Fatalf("%q did not exit within %s of SIGINT; it wrote:\n%s", pr.cmd.Args, waitDeadline, pr.out)
		return nil
	}
}

// watchedBuffer is an output buffer that tells waiters when it grows.
type watchedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wait chan struct{} // closed and replaced at every write
}

func newWatchedBuffer() *watchedBuffer { return &watchedBuffer{wait: make(chan struct{})} }

func (w *watchedBuffer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	close(w.wait)
	w.wait = make(chan struct{})
	return len(b), nil
}

func (w *watchedBuffer) wake() { w.Write(nil) }

// changed returns a channel closed at the next write.
func (w *watchedBuffer) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wait
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// spendFirstConnection connects to carrel's named pipe once, as soon as it
// takes a connection, and disconnects. Every test calls it after each start
// of carrel, before carrel's own clients, because of a difference between
// Wine's named pipes and Windows': go-winio (carrel's pipe listener)
// creates the pipe's first instance without read or write access, which
// on Windows leaves that instance disconnected, so clients are only ever
// connected to the instances Accept creates; Wine's wineserver puts every
// new instance in the listening state, first in line (server/named_pipe.c,
// create_pipe_server), so under Wine the first client after each start
// is connected to an instance no one serves and hangs until its 30 s
// timeout. Windows does not do that, so carrel is not changed for it.
func (p *prefix) spendFirstConnection(pipe string) {
	p.t.Helper()
	p.ok(`C:\tools\pipeopen.exe`, pipe, fmt.Sprint(waitDeadline.Milliseconds()))
}

// serviceState is the state `sc query NAME` reports (RUNNING, STOPPED,
// START_PENDING …), or "" when the service does not exist.
func (p *prefix) serviceState(name string) string {
	p.t.Helper()
	r := p.run("sc", "query", name)
	if r.code != 0 {
		return ""
	}
	m := regexp.MustCompile(`STATE\s+:\s+\d+\s+(\w+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		p.t.Fatalf("sc query %s: no STATE in\n%v", name, r)
	}
	return m[1]
}

// waitService waits until the service manager reports the service in
// state want ("" for not installed).
func (p *prefix) waitService(name, want string) {
	p.t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		got := p.serviceState(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("service %s is %q after %s; want %q", name, got, waitDeadline, want)
		}
	}
}

// regValues reads the values of a registry key: name → data, as `reg
// query` prints them.
func (p *prefix) regValues(key string) map[string]string {
	p.t.Helper()
	r := p.ok("reg", "query", key)
	vals := map[string]string{}
	re := regexp.MustCompile(`^\s+(\S+)\s+(REG_\w+)\s+(.*?)\s*$`)
	for _, l := range strings.Split(strings.ReplaceAll(r.stdout, "\r", ""), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			vals[m[1]] = m[3]
		}
	}
	return vals
}
