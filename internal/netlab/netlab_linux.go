package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// Lab is a pair of namespaces joined by veth.
type Lab struct {
	PC, Server     string     // namespace names
	PCIf, ServerIf string     // the veth end inside each namespace
	PC4, Server4   netip.Addr // 10.200.N.2 and 10.200.N.1
	PC6, Server6   netip.Addr // fd00:200::2 and fd00:200::1
	Dir            string     // a temporary folder for configs and captures
	t              testing.TB
}

// New creates the lab and registers its removal with t.Cleanup. Names are
// random, so tests in different packages may run at the same time.
func New(t testing.TB) *Lab {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip")
	var id [3]byte
	rand.Read(id[:])
	tag := hex.EncodeToString(id[:])
	l := &Lab{
		PC: "carrel-pc-" + tag, Server: "carrel-srv-" + tag,
		PCIf: "cp" + tag, ServerIf: "cs" + tag,
		PC4:     netip.AddrFrom4([4]byte{10, 200, id[0], 2}),
		Server4: netip.AddrFrom4([4]byte{10, 200, id[0], 1}),
		PC6:     netip.MustParseAddr("fd00:200::2"),
		Server6: netip.MustParseAddr("fd00:200::1"),
		Dir:     t.TempDir(),
		t:       t,
	}
	t.Cleanup(func() {
		// Deleting a namespace deletes the veth end in it, and its peer.
		exec.Command("ip", "netns", "del", l.PC).Run()
		exec.Command("ip", "netns", "del", l.Server).Run()
	})
	steps := [][]string{
		{"netns", "add", l.PC},
		{"netns", "add", l.Server},
		{"link", "add", l.PCIf, "netns", l.PC, "type", "veth", "peer", "name", l.ServerIf, "netns", l.Server},
		{"-n", l.PC, "link", "set", "lo", "up"},
		{"-n", l.Server, "link", "set", "lo", "up"},
		{"-n", l.PC, "addr", "add", l.PC4.String() + "/24", "dev", l.PCIf},
		{"-n", l.Server, "addr", "add", l.Server4.String() + "/24", "dev", l.ServerIf},
		{"-n", l.PC, "addr", "add", l.PC6.String() + "/64", "dev", l.PCIf, "nodad"},
		{"-n", l.Server, "addr", "add", l.Server6.String() + "/64", "dev", l.ServerIf, "nodad"},
		{"-n", l.PC, "link", "set", l.PCIf, "up"},
		{"-n", l.Server, "link", "set", l.ServerIf, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("netlab: ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return l
}

// Run runs a command in namespace ns and returns its combined output; it
// fails t when the command fails.
func (l *Lab) Run(ns string, name string, args ...string) string {
	l.t.Helper()
	out, err := l.Try(ns, name, args...)
	if err != nil {
		l.t.Fatalf("netlab: in %s: %s %s: %v\n%s", ns, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try is Run that returns the error instead of failing.
func (l *Lab) Try(ns string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Proc is a background process started with Start.
type Proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

// Start starts a long-running command (a server, a capture) in namespace
// ns. t.Cleanup stops it if the test has not.
func (l *Lab) Start(ns string, name string, args ...string) *Proc {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	p := &Proc{cmd: cmd, out: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so Stop reaches what `ip netns exec` runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("netlab: starting %s in %s: %v", name, ns, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.t.Cleanup(func() { p.Stop() })
	return p
}

// Stop sends SIGTERM, waits up to five seconds, then kills. It returns the
// process's output.
func (p *Proc) Stop() string { return p.Signal(syscall.SIGTERM) }

// Signal sends sig to the process group and waits for the process to end
// as Stop does.
func (p *Proc) Signal(sig syscall.Signal) string {
	select {
	case <-p.done:
		return p.out.String()
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.out.String()
}

// WaitListening waits until something in ns listens on the TCP or UDP
// port (proto "tcp" or "udp").
func (l *Lab) WaitListening(ns, proto string, port int) {
	l.t.Helper()
	flag := "-ltnH"
	if proto == "udp" {
		flag = "-lunH"
	}
	want := fmt.Sprintf(":%d ", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := l.Try(ns, "ss", flag)
		if strings.Contains(out, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("netlab: nothing listens on %s port %d in %s", proto, port, ns)
}

// Do runs fn on an OS thread that has entered namespace ns, then returns
// the thread to the test's namespace. Sockets fn opens stay in ns, which
// is how a test opens a capture on the pc's veth from its own process.
func (l *Lab) Do(ns string, fn func()) {
	l.t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		l.t.Fatalf("netlab: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		l.t.Fatalf("netlab: %v", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		l.t.Fatalf("netlab: entering %s: %v", ns, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime ends it with the
			// goroutine instead of reusing a thread in the wrong namespace.
			l.t.Errorf("netlab: leaving %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}
