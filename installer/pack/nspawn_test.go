// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// A Debian root booted with systemd-nspawn -b, so that the package meets a
// real systemd: its unit, its hardening, its restarts. The host need not run
// systemd itself (CI machines and this one do not): the container is not
// registered with machined and keeps the caller's cgroup (--register=no
// --keep-unit), and the test enters it with nsenter rather than machinectl.

// bootDeadline only stops a hang: a container that has not finished booting
// by then never will. Waits inside the container use waitDeadline.
const (
	bootDeadline = 3 * time.Minute
	waitDeadline = 90 * time.Second
)

// container is a booted Debian root.
type container struct {
	t      *testing.T
	name   string // machine name and host name, unique per run
	root   string
	nspawn *exec.Cmd
	exited chan struct{} // closed when systemd-nspawn has exited
	leader int           // host pid of the container's init (systemd)

	mu      sync.Mutex
	console bytes.Buffer // nspawn's and the container's console output
}

func (c *container) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.console.Write(p)
}

func (c *container) consoleTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return lastLines(c.console.String(), 30)
}

// bootContainer boots root under systemd-nspawn with only a loopback
// interface (--private-network) and waits until its systemd says boot is
// finished. The container is powered off, and everything nspawn left on the
// host removed, when the test ends, whether it passed or not.
func bootContainer(t *testing.T, root string) *container {
	t.Helper()
	return bootContainerWith(t, root, bootOptions{})
}

// bootOptions change how bootContainerWith starts systemd-nspawn.
type bootOptions struct {
	env  []string // added to systemd-nspawn's environment
	args []string // added to its arguments
}

// bootContainerWith is bootContainer with options.
func bootContainerWith(t *testing.T, root string, o bootOptions) *container {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "systemd-nspawn", "nsenter")
	suffix := make([]byte, 4)
	rand.Read(suffix)
	c := &container{t: t, root: root, exited: make(chan struct{}),
		name: fmt.Sprintf("carrel-test-%d-%s", os.Getpid(), hex.EncodeToString(suffix))}
	// Each PC has its own host name, which carrel takes as its PC id; the
	// root has the host name of the machine debootstrap ran on.
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte(c.name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.nspawn = exec.Command("systemd-nspawn", append(append([]string{"--directory", root, "--machine", c.name,
		"--register=no", "--keep-unit", "--private-network"}, o.args...), "--boot", "--console=pipe")...)
	c.nspawn.Env = append(os.Environ(), o.env...)
	c.nspawn.Stdout, c.nspawn.Stderr = c, c
	// Should the test binary die (a test timeout), nspawn gets SIGTERM,
	// which it turns into an orderly poweroff of the container.
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	start := time.Now()
	if err := c.nspawn.Start(); err != nil {
		t.Fatalf("starting systemd-nspawn: %v", err)
	}
	go func() { c.nspawn.Wait(); close(c.exited) }()
	t.Cleanup(c.shutdown)

	c.waitHost("the container's systemd to start", bootDeadline, func() (bool, string) {
		c.leader = childNamed(c.nspawn.Process.Pid, "systemd")
		return c.leader != 0, "no systemd child of systemd-nspawn yet"
	})
	c.waitHost("the container to finish booting", bootDeadline, func() (bool, string) {
		out, _ := c.sh("root", "systemctl is-system-running")
		state := strings.TrimSpace(out)
		return state == "running" || state == "degraded", state
	})
	if out, _ := c.sh("root", "systemctl is-system-running"); strings.TrimSpace(out) != "running" {
		failed, _ := c.sh("root", "systemctl --failed --no-pager")
		t.Logf("the container booted %s:\n%s", strings.TrimSpace(out), failed)
	}
	t.Logf("container %s booted in %s", c.name, time.Since(start).Round(10*time.Millisecond))
	return c
}

// childNamed returns the pid of a child of parent whose command is name, or 0.
func childNamed(parent int, name string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 2 || s[open+1:close] != name || f[1] != strconv.Itoa(parent) {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		return pid
	}
	return 0
}

// shutdown powers the container off (SIGTERM makes nspawn ask its init for
// an orderly poweroff), kills it if it does not stop, and removes what
// nspawn leaves under /run/systemd/nspawn.
func (c *container) shutdown() {
	select {
	case <-c.exited:
	default:
		c.nspawn.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(bootDeadline):
			c.t.Errorf("container %s did not power off; killing it", c.name)
			// Killing the init of a pid namespace kills everything in it.
			if c.leader != 0 {
				syscall.Kill(c.leader, syscall.SIGKILL)
			}
			c.nspawn.Process.Kill()
			<-c.exited
		}
	}
	// nspawn leaves this folder when /run is not a tmpfs.
	os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", c.name))
	if c.t.Failed() {
		c.t.Logf("console of %s (last lines):\n%s", c.name, c.consoleTail())
	}
}

// command returns a command running script with /bin/sh inside the
// container, as user (root, or an account that setpriv switches to with its
// groups), with a clean environment.
func (c *container) command(user, script string) *exec.Cmd {
	args := []string{"-t", strconv.Itoa(c.leader), "-m", "-u", "-i", "-n", "-p", "--",
		"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if user == "root" {
		args = append(args, "HOME=/root")
	} else {
		args = append(args, "HOME=/", "setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--")
	}
	return exec.Command("nsenter", append(args, "/bin/sh", "-ec", script)...)
}

// sh runs script in the container and returns its combined output.
func (c *container) sh(user, script string) (string, error) {
	out, err := c.command(user, script).CombinedOutput()
	return string(out), err
}

// run runs script as root and fails the test when it fails.
func (c *container) run(script string) string {
	c.t.Helper()
	start := time.Now()
	out, err := c.sh("root", script)
	if d := time.Since(start); d > 3*time.Second {
		c.t.Logf("%s took %s", script, d.Round(10*time.Millisecond))
	}
	if err != nil {
		c.t.Fatalf("in the container: %s: %v\n%s", script, err, out)
	}
	return out
}

// stdout runs script as user and returns its standard output alone (for
// JSON), failing the test when it fails.
func (c *container) stdout(user, script string) []byte {
	c.t.Helper()
	cmd := c.command(user, script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("in the container, as %s: %s: %v\n%s%s", user, script, err, out, stderr.Bytes())
	}
	return out
}

// inNetns runs a host program in the container's network namespace only:
// traffic generators the minimal root does not have.
func (c *container) inNetns(name string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-n", "--", name}, args...)...).CombinedOutput()
	return string(out), err
}

// path is a path inside the container, seen from the host.
func (c *container) path(p string) string { return filepath.Join(c.root, p) }

// waitHost polls cond until it holds; the deadline only stops a hang, and
// the test fails with the last state cond reported. It also stops when the
// container has gone.
func (c *container) waitHost(what string, deadline time.Duration, cond func() (bool, string)) {
	c.t.Helper()
	if err := c.poll(deadline, cond); err != nil {
		c.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// wait is waitHost with the deadline for things inside a booted container.
func (c *container) wait(what string, cond func() (bool, string)) {
	c.t.Helper()
	c.waitHost(what, waitDeadline, cond)
}

func (c *container) poll(deadline time.Duration, cond func() (bool, string)) error {
	end := time.Now().Add(deadline)
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("the container exited (last state: %s)", state)
		default:
		}
		if time.Now().After(end) {
			return fmt.Errorf("not after %s (last state: %s)", deadline, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exitCode is the exit status in err from exec, 0 for nil, -1 when the
// program did not run to an exit.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}
