//go:build linux

package wine

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestNpcapUnderWine: carrel starts, records bookings and reports capture
// whatever wpcap.dll the PC has. It used to die at start, before main,
// when the DLL lacked any function gopacket/pcap binds: Wine's own
// wpcap.dll lacks pcap_setdirection, as old WinPcap versions do. Now
// carrel loads the DLL itself when a misuse case starts capture, and only
// capture fails, with a message that says what to install.
//
// Three PCs in turn, each with a misuse case in force on the adapter "lo":
//   - Wine's wpcap.dll, which passes what it is asked to the host's
//     libpcap. It has every function carrel calls, so capture runs: this
//     is the one place the tests run carrel's Npcap code (loading,
//     adapters, reading, statistics) against a real wpcap.dll. Wine's
//     adapters are the Linux host's interfaces ("lo" here), so it
//     captures the test's own packets to 127.0.0.1. What Wine cannot
//     show: Npcap's driver, its adapter names and its read timeout (under
//     Wine the host's libpcap starts the timeout only at the first packet,
//     so the test keeps packets coming until carrel has stopped);
//   - an old WinPcap (testdata/wpcap_old.c: no pcap_create family): the
//     case reports that Npcap is missing, in status and the audit log;
//   - no wpcap.dll at all (a PC without Npcap): the same, naming the
//     folders carrel looked in.
func TestNpcapUnderWine(t *testing.T) {
	p := newPrefix(t)
	exe := p.copyIn(carrelExe(t, versionOld), `C:\carrel\carrel.exe`)
	cfg := []string{"--config", `C:\x\carrel.toml`}
	// carrel, start and stop take the (sub)test to fail, and run in its
	// view of the prefix (see prefix.in).
	carrel := func(t *testing.T, args ...string) result {
		t.Helper()
		return p.in(t).ok(append(append([]string{exe}, args...), cfg...)...)
	}

	// version used to panic here: "Couldn't load function
	// pcap_setdirection from C:\windows\system32\wpcap.dll".
	if r := p.run(exe, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "carrel ") {
		t.Fatalf("carrel version with Wine's wpcap.dll:\n%v", r)
	}

	identity, recipient := headLibrarian(t, p)
	p.ok(exe, "config", "init", "--data-dir", `C:\x`, "--recipient", recipient, "--out", cfg[1])
	pipe := apiPipe(t, p, cfg[1])
	declareCase(t, p, cfg[1], "lo")

	// start runs carrel with the case in force and records a booking.
	start := func(t *testing.T, ref string) *proc {
		t.Helper()
		daemon := p.in(t).start(append([]string{exe, "run"}, cfg...)...)
		daemon.waitFor("carrel started")
		p.in(t).spendFirstConnection(pipe)
		if r := carrel(t, "booking", "start", "--ref", ref); !strings.Contains(r.stdout, ref) {
			t.Errorf("booking start --ref %s:\n%v", ref, r)
		}
		return daemon
	}
	stop := func(t *testing.T, daemon *proc) {
		t.Helper()
		if err := daemon.interrupt(); err != nil {
			t.Errorf("carrel run after Ctrl+C: %v\n%s", err, daemon.out)
		}
		if out := daemon.out.String(); strings.Contains(out, "panic") || !strings.Contains(out, "carrel stopped") {
			t.Errorf("carrel run did not stop cleanly:\n%s", out)
		}
	}

	t.Run("Wine's wpcap.dll", func(t *testing.T) {
		p := p.in(t)
		testenv.NeedRoot(t) // the host's libpcap opens a packet socket
		traffic := sendUDP(t)
		defer traffic.stop()
		from := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		daemon := start(t, "npcap-wine")
		daemon.waitFor("traffic capture started")
		// The capture counts packets as they come (status is live).
		waitStatus(t, p, exe, cfg, regexp.MustCompile(`captured:\s+[1-9]\d* packets`))
		stop(t, daemon) // while packets still come: see above
		traffic.stop()
		sealed := auditEntries(t, p, exe, cfg, audit.SegmentSealed)
		if len(sealed) == 0 {
			t.Fatalf("no segment.sealed entry after capture:\n%s", daemon.out)
		}
		// The head librarian's export holds the test's own packets, as
		// flows to its port: Npcap's packet headers were read right.
		to := time.Now().UTC().Add(time.Minute).Truncate(time.Second)
		if err := os.MkdirAll(p.host(`C:\export`), 0o755); err != nil {
			t.Fatal(err)
		}
		carrel(t, "export", "--order", "ORD-NPCAP", "--court", "Retten i Test", "--requester", "Politi", "--exporter", "Head Librarian",
			"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--identity", identity, "--out", `C:\export\ORD-NPCAP`)
		if !bagHas(t, p.host(`C:\export\ORD-NPCAP\data\traffic`), fmt.Sprintf(`"dport":%d`, traffic.port)) {
			t.Errorf("the export's traffic holds no flow to port %d", traffic.port)
		}
	})

	// The next two replace Wine's wpcap.dll with what a PC might have, and
	// tell Wine to load only a DLL file (DllOverrides wpcap=native), never
	// its built-in one. carrel reads the DLL at each capture start; Wine
	// reads the override when a program starts.
	p.ok("reg", "add", `HKCU\Software\Wine\DllOverrides`, "/v", "wpcap", "/t", "REG_SZ", "/d", "native", "/f")
	wpcap := p.host(`C:\windows\system32\wpcap.dll`)
	for _, pc := range []struct {
		name, dll string // dll: the wpcap.dll the PC has; "" for none
		why       string // what status and the audit log must say
	}{
		{"an old WinPcap", helpers.wpcapOld,
			`no usable Npcap is installed: "C:\\windows\\system32\\wpcap.dll" ("WinPcap version 3.1 (carrel test stand-in)") is not Npcap: it lacks pcap_freealldevs, pcap_create`},
		{"no Npcap", "",
			`no usable Npcap is installed: no wpcap.dll in "C:\\windows\\system32\\Npcap" or "C:\\windows\\system32"; install Npcap from https://npcap.com`},
	} {
		t.Run(pc.name, func(t *testing.T) {
			p := p.in(t)
			os.Remove(wpcap)
			if pc.dll != "" {
				p.copyIn(pc.dll, `C:\windows\system32\wpcap.dll`)
			}
			if r := p.run(exe, "version"); r.code != 0 {
				t.Errorf("carrel version:\n%v", r)
			}
			daemon := start(t, "npcap-"+strings.ReplaceAll(pc.name, " ", "-"))
			daemon.waitFor("capture could not start")
			st := waitStatus(t, p, exe, cfg, regexp.MustCompile(`(?m)^why:\s+capture could not start: `))
			if !strings.Contains(st, pc.why) {
				t.Errorf("status:\n%s\nwant the case to say %s", st, pc.why)
			}
			var found bool
			for _, e := range auditEntries(t, p, exe, cfg, audit.CaptureError) {
				found = found || strings.Contains(e.Fields["why"], pc.why)
			}
			if !found {
				t.Errorf("no capture.error entry says %s", pc.why)
			}
			mustContain(t, carrel(t, "booking", "list"), "npcap-"+strings.ReplaceAll(pc.name, " ", "-"))
			stop(t, daemon)
		})
	}
	carrel(t, "audit", "verify")
}

// declareCase sets capture.interface in the config at path and appends a
// misuse case in force now, for every PC.
func declareCase(t *testing.T, p *prefix, path, iface string) {
	t.Helper()
	b, err := os.ReadFile(p.host(path))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "\ninterface = \"\"\n", fmt.Sprintf("\ninterface = %q\n", iface), 1)
	if strings.Count(s, fmt.Sprintf("interface = %q", iface)) != 1 {
		t.Fatalf("%s: no empty capture.interface to set:\n%s", path, b)
	}
	ts := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	s += fmt.Sprintf(`
[[case]]
id = "wine-npcap"
reason = "identified misuse"
category = "abuse-of-service"
declared_by = "Anne"
approved_by = "Bo"
notice_posted_at = %s
start = %s
end = %s
pcs = ["*"]
`, ts(-2*time.Hour), ts(-time.Hour), ts(24*time.Hour))
	if err := os.WriteFile(p.host(path), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitStatus runs `carrel status` until its output matches re, and
// returns that output.
func waitStatus(t *testing.T, p *prefix, exe string, cfg []string, re *regexp.Regexp) string {
	t.Helper()
	p = p.in(t)
	deadline := time.Now().Add(waitDeadline)
	for {
		r := p.ok(append([]string{exe, "status"}, cfg...)...)
		if re.MatchString(r.stdout) {
			return r.stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrel status did not match %s within %s; last:\n%s", re, waitDeadline, r.stdout)
		}
	}
}

// auditEntry is an entry as `carrel audit list --json` prints it.
type auditEntry struct {
	Seq    int64             `json:"seq"`
	Kind   string            `json:"kind"`
	Fields map[string]string `json:"fields"`
}

// auditEntries lists the audit log's entries of kind.
func auditEntries(t *testing.T, p *prefix, exe string, cfg []string, kind audit.Kind) []auditEntry {
	t.Helper()
	p = p.in(t)
	r := p.ok(append([]string{exe, "audit", "list", "--json", "--kind", string(kind)}, cfg...)...)
	var es []auditEntry
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var e auditEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("audit list --json: %v\n%s", err, r.stdout)
		}
		es = append(es, e)
	}
	return es
}

// bagHas reports whether any file in dir contains s.
func bagHas(t *testing.T, dir, s string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no traffic files in %s (%v)", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// udpSender sends small UDP datagrams to 127.0.0.1:port, about a
// thousand a second, until stopped: traffic for capture on "lo" to see.
type udpSender struct {
	port int
	done chan struct{}
	quit chan struct{}
}

func sendUDP(t *testing.T) *udpSender {
	t.Helper()
	// A port nothing listens on, chosen by the kernel so that it is free.
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSender{port: port, done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer c.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
				// 1,000 a second: the engine publishes its counts every
				// 1,024 packets while packets keep coming.
				for range 20 {
					c.Write([]byte("carrel wine capture test")) // refused (ICMP) or not: the packet went out on lo
				}
			}
		}
	}()
	return s
}

func (s *udpSender) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}
