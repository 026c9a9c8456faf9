// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/svc"
	"github.com/carrel-lib/carrel/internal/testenv"
	"github.com/carrel-lib/carrel/internal/witness"
	"github.com/carrel-lib/carrel/internal/witness/witnesstest"
)

// The test binary doubles as two small programs run inside the container,
// which has no curl, socat or Python: a client of the witness relay's
// socket, and a TCP listener that stands for a destination that is not a
// witness.
func init() {
	if dest := os.Getenv("CARREL_TEST_RELAY_PROBE"); dest != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := witness.DialRelay(witness.DefaultRelaySocket)(ctx, "tcp", dest)
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(3)
		}
		c.Close()
		fmt.Println("connected")
		os.Exit(0)
	}
	if addr := os.Getenv("CARREL_TEST_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	}
}

// TestSystemdWitness installs the .deb under a booted systemd whose BPF
// firewall works (a unified cgroup hierarchy, and the bpf system call
// allowed in the container), runs a real litewitness in the container's
// network namespace, and shows what the README promises of the witness
// relay: with one line of config the service's checkpoints are cosigned,
// through carrel-witness.service; carrel.service itself keeps no IP
// family; the relay refuses any destination but the witness, and its
// unit's IP firewall drops traffic to other addresses even from inside it.
func TestSystemdWitness(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "systemd-nspawn", "nsenter", "curl")
	deb := buildDeb(t, testVersion1)
	root := debianRoot(t)
	if err := copyFile(deb, filepath.Join(root, "root", filepath.Base(deb))); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(linuxBinary(t), filepath.Join(root, "usr/local/bin/carrel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "usr/local/bin/carrel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(self, filepath.Join(root, "root", "probe")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "root", "probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	// IPAddressDeny= needs systemd's BPF firewall: a unified cgroup
	// hierarchy (nspawn mounts one for the container on a hybrid host) and
	// the bpf system call, which nspawn's own filter refuses by default.
	c := bootContainerWith(t, root, bootOptions{env: []string{"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1"},
		args: []string{"--system-call-filter=bpf"}})
	s := &systemdTest{container: c}
	t.Run("ServiceInstall", func(t *testing.T) { s.on(t).serviceInstall() })
	s.on(t).install(filepath.Base(deb))

	const witnessAddr, otherAddr = "127.0.0.1:7380", "127.0.0.2:7381"
	w := witnesstest.Start(t, witnesstest.Options{Name: "witness.test/w1", Listen: witnessAddr,
		Wrap: func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"nsenter", "-t", strconv.Itoa(c.leader), "-n", "--"}, cmd.Args...)
			cmd.Path, _ = exec.LookPath("nsenter")
		},
		Probe: func(addr string) bool {
			_, err := c.inNetns("curl", "-s", "-o", "/dev/null", "--max-time", "2", "http://"+addr+"/")
			return err == nil
		}})
	// A destination that is not a witness, listening in the container.
	other := c.command("root", "CARREL_TEST_LISTEN="+otherAddr+" exec /root/probe")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Signal(syscall.SIGKILL); other.Wait() })

	t.Run("Cosigned", func(t *testing.T) {
		s.on(t)
		key := strings.TrimSpace(s.run("carrel audit key"))
		origin, _, _ := strings.Cut(key, "+")
		w.AddLog(origin, key)
		conf, err := os.ReadFile(s.path("/etc/carrel/carrel.toml"))
		if err != nil {
			t.Fatal(err)
		}
		// One line of config.
		line := fmt.Sprintf("witnesses = [{name = \"w1\", url = \"http://%s\", key = %q}]", witnessAddr, w.Key)
		s.writeConfig(strings.Replace(string(conf), "witnesses = []", line, 1))
		start := time.Now()
		var st api.Status
		s.wait("the witness to cosign the service's latest checkpoint", func() (bool, string) {
			st = s.status()
			ws := witnessStatus(st)
			return ws.Cosigned > 0 && ws.Cosigned == st.Audit.Checkpointed && ws.Error == "", fmt.Sprintf("%+v", st.Audit)
		})
		t.Logf("cosigned size %d %s after the config named the witness", st.Audit.Checkpointed, time.Since(start).Round(10*time.Millisecond))
		if st.Audit.Witnessed != st.Audit.Checkpointed {
			t.Errorf("witnessed = %d; want %d", st.Audit.Witnessed, st.Audit.Checkpointed)
		}
		if got := w.TreeSize(origin); got != strconv.FormatInt(st.Audit.Checkpointed, 10) {
			t.Errorf("the witness holds size %s; want %d", got, st.Audit.Checkpointed)
		}
		// The relay took the new witness up by starting again, and its
		// unit now allows that address alone.
		if allow := strings.TrimSpace(s.run("systemctl show -p IPAddressAllow --value carrel-witness")); allow != "127.0.0.1/32" {
			t.Errorf("carrel-witness IPAddressAllow = %q; want 127.0.0.1/32", allow)
		}
		if j := s.journal("-u carrel-witness"); !strings.Contains(j, "the witness list changed") {
			t.Errorf("the relay's journal does not say it restarted for the new witness:\n%s", j)
		}
		out := s.run("carrel audit verify --witness-key '" + w.Key + "'")
		if !strings.Contains(out, "witnessed up to") {
			t.Errorf("carrel audit verify --witness-key:\n%s", out)
		}
	})

	t.Run("Confinement", func(t *testing.T) {
		s.on(t)
		props := s.run("systemctl show -p RestrictAddressFamilies carrel; systemctl show -p RestrictAddressFamilies -p CapabilityBoundingSet -p MainPID carrel-witness")
		// systemctl lists the families sorted: carrel's, then the relay's.
		for _, want := range []string{"RestrictAddressFamilies=AF_NETLINK AF_PACKET AF_UNIX\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n",
			"CapabilityBoundingSet=\n"} {
			if !strings.Contains(props, want) {
				t.Errorf("unit properties lack %q:\n%s", strings.TrimSpace(want), props)
			}
		}
		// systemd keeps the address prefixes in a hash set, so their order
		// in systemctl show changes from boot to boot: compare them as a set.
		deny := strings.Fields(s.run("systemctl show -p IPAddressDeny --value carrel-witness"))
		sort.Strings(deny)
		if strings.Join(deny, " ") != "0.0.0.0/0 ::/0" {
			t.Errorf("carrel-witness IPAddressDeny = %q; want 0.0.0.0/0 and ::/0", deny)
		}
		pid := strings.TrimSpace(s.run("systemctl show -p MainPID --value carrel-witness"))
		status := s.run("cat /proc/" + pid + "/status")
		for _, want := range []string{"CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(status, want+"\n") {
				t.Errorf("the relay's status lacks %q", want)
			}
		}
		// The relay cannot see the data folder: in its mount namespace the
		// folder is an empty node no one may open (InaccessiblePaths).
		if outside := s.run("ls -A /var/lib/carrel"); !strings.Contains(outside, "audit.db") {
			t.Fatalf("the data folder holds no audit.db:\n%s", outside)
		}
		inside := s.run("nsenter -t " + pid + " -m -- sh -c 'stat -c %a /var/lib/carrel; ls -A /var/lib/carrel'")
		if strings.TrimSpace(inside) != "0" {
			t.Errorf("in the relay's mount namespace the data folder is:\n%s\nwant mode 0 and empty", inside)
		}
	})

	// Runs last: it stops carrel.
	defer t.Run("ShutdownCheckpoint", func(t *testing.T) { s.on(t).shutdownCheckpoint(w) })

	t.Run("OtherDestinationsRefused", func(t *testing.T) {
		s.on(t)
		probe := func(dest string) (string, error) {
			return s.sh("root", "CARREL_TEST_RELAY_PROBE="+dest+" /root/probe")
		}
		if out, err := probe(witnessAddr); err != nil {
			t.Fatalf("the witness through the relay: %v\n%s", err, out)
		}
		for _, dest := range []string{otherAddr, "127.0.0.1:22", "198.51.100.7:443"} {
			if out, err := probe(dest); err == nil || !strings.Contains(out, "403") {
				t.Errorf("%s through the relay: %v\n%s; want refused (403)", dest, err, out)
			}
		}
		// The kernel too: a shell moved into the relay's cgroup reaches the
		// witness and nothing else, while outside it the other listener
		// answers.
		s.wait("the other listener", func() (bool, string) {
			out, err := s.sh("root", "bash -c 'exec 3<>/dev/tcp/"+strings.Replace(otherAddr, ":", "/", 1)+"'")
			return err == nil, out
		})
		cg := strings.TrimSpace(s.run("systemctl show -p ControlGroup --value carrel-witness"))
		inUnit := func(addr string) (string, error) {
			return s.sh("root", "echo $$ > /sys/fs/cgroup"+cg+"/cgroup.procs && exec timeout 5 bash -c 'exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)+"'")
		}
		if out, err := inUnit(witnessAddr); err != nil {
			t.Errorf("the witness from inside the relay's cgroup: %v\n%s", err, out)
		}
		if out, err := inUnit(otherAddr); err == nil {
			t.Errorf("%s was reached from inside the relay's cgroup: IPAddressDeny is not in force\n%s", otherAddr, out)
		}
	})
}

// serviceInstall: without the package, `carrel service install` installs
// carrel-witness.service beside carrel.service, the relay starts and
// stops with carrel, and `carrel service uninstall` removes both. It
// leaves the container as it found it, for the .deb.
func (s *systemdTest) serviceInstall() {
	t := s.t
	const bin = "/usr/local/bin/carrel"
	out := s.run(bin + " service install")
	if !strings.Contains(out, "installed the carrel service") {
		t.Errorf("carrel service install:\n%s", out)
	}
	relay, err := svc.RenderRelayUnit(bin, "/etc/carrel/carrel.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(s.path("/etc/systemd/system/carrel-witness.service")); err != nil || string(got) != relay {
		t.Errorf("installed relay unit = %v:\n%s\nwant svc.RenderRelayUnit's", err, got)
	}
	s.run(bin + " service start")
	s.wait("carrel and its relay to run", func() (bool, string) {
		out, _ := s.sh("root", "systemctl is-active carrel carrel-witness")
		return out == "active\nactive\n", out
	})
	s.run(bin + " service stop")
	s.wait("carrel and its relay to stop", func() (bool, string) {
		out, _ := s.sh("root", "systemctl is-active carrel carrel-witness")
		return out == "inactive\ninactive\n", out
	})
	s.run(bin + " service uninstall")
	for _, p := range []string{"/etc/systemd/system/carrel.service", "/etc/systemd/system/carrel-witness.service"} {
		if _, err := os.Stat(s.path(p)); err == nil {
			t.Errorf("%s is left after carrel service uninstall", p)
		}
	}
	s.run("rm -rf /etc/carrel /var/lib/carrel " + bin + " && systemctl daemon-reload && systemctl reset-failed")
}

// shutdownCheckpoint: `systemctl stop carrel` stops the relay too, after
// carrel (Before=), so carrel's shutdown checkpoint reaches the witness.
func (s *systemdTest) shutdownCheckpoint(w *witnesstest.Witness) {
	t := s.t
	s.run("systemctl stop carrel")
	s.wait("carrel and its relay to stop", func() (bool, string) {
		out, _ := s.sh("root", "systemctl is-active carrel carrel-witness")
		return out == "inactive\ninactive\n", out
	})
	note := s.run("carrel audit checkpoint")
	origin, rest, _ := strings.Cut(note, "\n")
	size, _, _ := strings.Cut(rest, "\n")
	if got := w.TreeSize(origin); got != size {
		t.Errorf("the witness holds size %s of %s; want the shutdown checkpoint's %s\n%s", got, origin, size, s.journal("-u carrel"))
	}
}

func witnessStatus(st api.Status) api.WitnessStatus {
	for _, w := range st.Audit.Witnesses {
		if w.Name == "w1" {
			return w
		}
	}
	return api.WitnessStatus{}
}
