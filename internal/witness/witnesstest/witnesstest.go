//go:build linux

// Package witnesstest runs a real transparency-log witness for tests:
// litewitness from filippo.io/torchwood v0.6.1, with its signing key in an
// ssh-agent, told which logs to accept with its witnessctl. It installs
// both with `go install` (from the Go module proxy) into build/tools the
// first time.
//
// It is imported only by tests.
package witnesstest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// Version is the torchwood release the tests run. Newer releases need a
// newer Go than carrel's.
const Version = "v0.6.1"

// deadline only stops a hang.
const deadline = 60 * time.Second

// Tools returns the paths of litewitness and witnessctl, installing them
// the first time.
func Tools(t testing.TB) (litewitness, witnessctl string) {
	t.Helper()
	goBin := testenv.NeedTool(t, "go")
	root := repoRoot(t)
	dir := filepath.Join(root, "build", "tools", "torchwood-"+Version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"litewitness", "witnessctl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		cmd := exec.Command(goBin, "install", "filippo.io/torchwood/cmd/"+name+"@"+Version)
		// Outside carrel's module: go install pkg@version builds the
		// tool with its own go.mod.
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			if testenv.Privileged() {
				t.Fatalf("go install filippo.io/torchwood/cmd/%s@%s: %v\n%s", name, Version, err, out)
			}
			t.Skipf("cannot install %s (%v): %s", name, err, out)
		}
	}
	return filepath.Join(dir, "litewitness"), filepath.Join(dir, "witnessctl")
}

func repoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// Witness is a running litewitness.
type Witness struct {
	t          testing.TB
	Name       string // the witness's name (its key's name)
	Dir        string
	DB         string
	Key        string // its verifier key, from its log
	Addr       string // host:port it listens on
	URL        string // http://Addr
	litewit    string
	witnessctl string
	agentSock  string
	fp         string // the key's SHA256: fingerprint

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stderr  *testenv.Buffer
	agent   *exec.Cmd
	wrapped func(*exec.Cmd) // runs the witness somewhere else (a network namespace)
	probe   func(addr string) bool
}

// Options say where the witness runs.
type Options struct {
	// Name is the witness's name; "witness.test/w1" by default.
	Name string
	// Listen is the host:port to listen on; a free loopback port by default.
	Listen string
	// Wrap, when set, changes the command before it starts (to run it in
	// a network namespace with nsenter, say).
	Wrap func(*exec.Cmd)
	// Probe, when set, reports whether the witness answers at addr; by
	// default a TCP connection from this process.
	Probe func(addr string) bool
}

// Start starts a witness with a new key in a new database. It is stopped
// when the test ends.
func Start(t testing.TB, o Options) *Witness {
	t.Helper()
	testenv.NeedTool(t, "ssh-keygen", "ssh-agent", "ssh-add")
	lw, ctl := Tools(t)
	if o.Name == "" {
		o.Name = "witness.test/w1"
	}
	dir := t.TempDir()
	w := &Witness{t: t, Name: o.Name, Dir: dir, DB: filepath.Join(dir, "witness.db"), litewit: lw, witnessctl: ctl,
		agentSock: filepath.Join(dir, "agent.sock"), wrapped: o.Wrap, probe: o.Probe}
	keyFile := filepath.Join(dir, "witness-key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "carrel test witness", "-f", keyFile)
	out := run(t, "ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub")
	f := strings.Fields(out)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	w.fp = f[1]
	// The agent runs in the foreground (-D) as a child the test owns.
	w.agent = exec.Command("ssh-agent", "-D", "-a", w.agentSock)
	w.agent.Stdout, w.agent.Stderr = io.Discard, io.Discard
	if err := w.agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { w.agent.Process.Kill(); w.agent.Wait() })
	waitFor(t, "ssh-agent's socket", func() (bool, string) {
		_, err := os.Stat(w.agentSock)
		return err == nil, fmt.Sprint(err)
	})
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+w.agentSock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	w.Addr = o.Listen
	if w.Addr == "" {
		w.Addr = freeLoopbackPort(t)
	}
	w.URL = "http://" + w.Addr
	w.Restart()
	t.Cleanup(w.Stop)
	return w
}

func freeLoopbackPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var vkeyPattern = regexp.MustCompile(`vkey=(\S+)`)

// Restart starts the witness again (after Stop) on the same database,
// key and address, and waits until it answers.
func (w *Witness) Restart() {
	t := w.t
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		t.Fatalf("witness %s is running", w.Name)
	}
	cmd := exec.Command(w.litewit, "-db", w.DB, "-name", w.Name, "-key", w.fp, "-ssh-agent", w.agentSock, "-listen", w.Addr)
	w.stderr = &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = w.stderr, w.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if w.wrapped != nil {
		w.wrapped(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting litewitness: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	w.cmd, w.exited = cmd, exited
	waitFor(t, "litewitness to log its key and listen", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("litewitness exited:\n%s", w.stderr.String())
		default:
		}
		log := w.stderr.String()
		m := vkeyPattern.FindStringSubmatch(log)
		if m == nil || !strings.Contains(log, "listening") {
			return false, log
		}
		w.Key = m[1]
		return w.answers(), log
	})
}

// answers reports whether something accepts connections at Addr.
func (w *Witness) answers() bool {
	if w.probe != nil {
		return w.probe(w.Addr)
	}
	c, err := net.DialTimeout("tcp", w.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop stops the witness (SIGINT, as litewitness expects) and waits for it.
func (w *Witness) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.exited:
	case <-time.After(deadline):
		w.cmd.Process.Kill()
		<-w.exited
	}
	w.cmd = nil
}

// Log returns what litewitness wrote so far.
func (w *Witness) Log() string { return w.stderr.String() }

// AddLog tells the witness to accept checkpoints of origin signed by the
// verifier key logKey (what `carrel audit key` prints), as the README tells
// a witness's operator to.
func (w *Witness) AddLog(origin, logKey string) {
	w.t.Helper()
	w.Ctl("add-log", "-db", w.DB, "-origin", origin)
	w.Ctl("add-key", "-db", w.DB, "-origin", origin, "-key", logKey)
}

// Ctl runs witnessctl with args and returns its output.
func (w *Witness) Ctl(args ...string) string {
	w.t.Helper()
	return run(w.t, w.witnessctl, args...)
}

// TreeSize returns the size the witness holds for origin, read from its
// database with sqlite3 (witnessctl list-logs prints only origins).
func (w *Witness) TreeSize(origin string) string {
	w.t.Helper()
	bin := testenv.NeedTool(w.t, "sqlite3")
	out, err := exec.Command(bin, w.DB, fmt.Sprintf("SELECT tree_size FROM log WHERE origin = '%s'", strings.ReplaceAll(origin, "'", "''"))).CombinedOutput()
	if err != nil {
		w.t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitFor polls cond until it holds; the deadline only stops a hang.
func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: not after %s (last state: %s)", what, deadline, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
