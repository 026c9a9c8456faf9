package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// The test binary turns into a flooding booking client when
// CARREL_TEST_FLOOD is set: it opens CARREL_TEST_FLOOD_CONNS keep-alive
// connections to the socket CARREL_TEST_FLOOD, sends a request on each,
// keeps every one open, prints what it got, and waits for its stdin to
// close.
func init() {
	if sock := os.Getenv("CARREL_TEST_FLOOD"); sock != "" {
		n, _ := strconv.Atoi(os.Getenv("CARREL_TEST_FLOOD_CONNS"))
		os.Exit(flood(sock, n))
	}
}

func flood(sock string, n int) int {
	var ok, refused, failed atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	const workers = 16
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := net.Dial("unix", sock)
				for wait := time.Millisecond; err != nil && strings.Contains(err.Error(), "resource temporarily unavailable"); wait = min(2*wait, 50*time.Millisecond) {
					time.Sleep(wait) // the backlog is full; the service catches up
					c, err = net.Dial("unix", sock)
				}
				if err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "dial:", err)
					continue
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: carrel\r\n\r\n")
				line, err := bufio.NewReader(c).ReadString('\n')
				switch {
				case strings.HasPrefix(line, "HTTP/1.1 200"):
					ok.Add(1)
				case strings.HasPrefix(line, "HTTP/1.1 503"):
					refused.Add(1)
				default:
					failed.Add(1)
					fmt.Fprintf(os.Stderr, "answer: %q %v\n", line, err)
				}
			}
		}(w)
	}
	wg.Wait()
	fmt.Printf("held=%d ok=%d refused=%d failed=%d\n", len(held), ok.Load(), refused.Load(), failed.Load())
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// procStats reads a process's open descriptors and resident memory.
func procStats(pid int) (fds int, rssKB, hwmKB int64) {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rssKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwmKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return len(ents), rssKB, hwmKB
}

// TestConnectionFloodFromMember: a booking-client account opens 20,000
// keep-alive connections (four processes); a booking by another caller
// still succeeds, and the service's descriptors and memory stay bounded.
// The figures are logged; the bounds asserted lie far beyond them.
func TestConnectionFloodFromMember(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "setpriv", "groupadd", "groupdel")
	const procs, perProc = 4, 5000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Each attacker process needs room for its 5,000; the service, before
	// the limits existed, took as many as its own limit allowed. Raise the
	// limit children inherit where the system lets root do it.
	if lim.Max < 65536 {
		want := lim
		want.Max, want.Cur = 65536, 65536
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		}
	}
	if lim.Max < perProc+1024 {
		t.Fatalf("RLIMIT_NOFILE hard limit %d leaves no room for %d connections per process", lim.Max, perProc)
	}
	m := memberSetup(t)
	svc := startService(t, m.cfgPath)
	pid := svc.cmd.Process.Pid
	baseFDs, baseRSS, _ := procStats(pid)

	// Sample the service while the flood runs.
	var maxFDs atomic.Int64
	var maxRSS atomic.Int64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			fds, rss, _ := procStats(pid)
			if int64(fds) > maxFDs.Load() {
				maxFDs.Store(int64(fds))
			}
			if rss > maxRSS.Load() {
				maxRSS.Store(rss)
			}
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	var attackers []*exec.Cmd
	reports := make(chan string, procs)
	for i := 0; i < procs; i++ {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--groups="+m.gid,
			"env", "CARREL_TEST_FLOOD="+m.sock, "CARREL_TEST_FLOOD_CONNS="+strconv.Itoa(perProc), m.exe)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		attackers = append(attackers, cmd)
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			reports <- strings.TrimSpace(line)
		}()
	}

	// Book as root while the flood runs and after it holds its connections.
	client := api.NewClient(m.sock)
	ctx := context.Background()
	var latencies []time.Duration
	book := func(ref string) {
		t.Helper()
		t0 := time.Now()
		_, err := client.Start(ctx, api.StartRequest{Ref: ref})
		if err == nil {
			_, err = client.End(ctx, ref)
		}
		d := time.Since(t0)
		latencies = append(latencies, d)
		if err != nil {
			t.Errorf("booking %s during the flood: %v (after %s)", ref, err, d)
		}
	}
	var got []string
	floodStart := time.Now()
	for i := 0; len(got) < procs; i++ {
		select {
		case r := <-reports:
			got = append(got, r)
		default:
		}
		if len(got) < procs {
			book(fmt.Sprintf("during-%d", i))
		}
		if time.Since(floodStart) > 10*time.Minute {
			t.Fatalf("the flood did not finish within 10 minutes; reports %q", got)
		}
	}
	floodTook := time.Since(floodStart)
	t0 := time.Now()
	book("held-1")
	heldLatency := time.Since(t0)
	close(sampling)
	<-sampled
	_, _, hwm := procStats(pid)

	var held, ok, refused, failed int
	for _, r := range got {
		var h, o, rf, f int
		if _, err := fmt.Sscanf(r, "held=%d ok=%d refused=%d failed=%d", &h, &o, &rf, &f); err != nil {
			t.Fatalf("attacker report %q: %v", r, err)
		}
		held, ok, refused, failed = held+h, ok+o, refused+rf, failed+f
	}
	slices.Sort(latencies)
	t.Logf("flood: %d connections held by the attacker (%d answered 200, %d refused 503, %d failed) in %s",
		held, ok, refused, failed, floodTook.Round(time.Millisecond))
	t.Logf("service: %d fds and %d KiB RSS before; at most %d fds and %d KiB RSS during (VmHWM %d KiB)",
		baseFDs, baseRSS, maxFDs.Load(), maxRSS.Load(), hwm)
	t.Logf("bookings by root: %d during the flood, median %s, max %s; with the flood's connections held: %s",
		len(latencies)-1, latencies[len(latencies)/2].Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond),
		heldLatency.Round(time.Microsecond))

	if held != procs*perProc {
		t.Errorf("the attacker held %d connections; want %d (the test did not flood)", held, procs*perProc)
	}
	if refused == 0 {
		t.Error("no connection of the flood was refused")
	}
	// Far beyond what the limits allow (32 + 64 + a few dozen files), far
	// below the flood.
	if maxFDs.Load() > 1000 {
		t.Errorf("the service held up to %d descriptors during the flood; want them bounded by the connection limits", maxFDs.Load())
	}
	if hwm > 256<<10 {
		t.Errorf("the service's peak RSS was %d KiB during the flood; want it bounded", hwm)
	}
	if heldLatency > time.Minute || latencies[len(latencies)-1] > time.Minute {
		t.Errorf("a booking took %s (max %s) during the flood", heldLatency, latencies[len(latencies)-1])
	}

	// The audit log records the flood, not each connection.
	for _, a := range attackers {
		a.Process.Signal(syscall.SIGTERM)
	}
	svc.stop(t)
	out, code := carrelRun(t, "audit", "list", "--config", m.cfgPath, "--kind", "api.refused")
	if code != 0 {
		t.Fatalf("audit list: %d %s", code, out)
	}
	entries := strings.Count(out, "api.refused")
	minutes := int(floodTook/time.Minute) + 1
	if entries < 1 || entries > 2+2*minutes {
		t.Errorf("%d api.refused entries for a flood of %s; want between 1 and %d:\n%s", entries, floodTook, 2+2*minutes, out)
	}
	t.Logf("audit: %d api.refused entries\n%s", entries, out)
}

// member is a running setup in which another account may use the API.
type member struct {
	dir, cfgPath, sock, gid, exe string
}

// memberSetup creates a booking-client group, a config whose socket other
// accounts can reach, and a copy of this binary they may run.
func memberSetup(t *testing.T) member {
	t.Helper()
	group := fmt.Sprintf("carrel-m%d", os.Getpid()%100000)
	if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	dir, cfgPath := demo(t, func(s string) string {
		return strings.Replace(s, `client_group = "carrel-booking"`, `client_group = "`+group+`"`, 1)
	})
	runDir := filepath.Join(dir, "run")
	os.Mkdir(runDir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(runDir, "api.sock")
	b, _ := os.ReadFile(cfgPath)
	b = []byte(strings.Replace(string(b), filepath.Join(dir, "data", "api.sock"), sock, 1))
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "carrel")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(exe, b, 0o755) != nil {
		t.Fatalf("copying the test binary: %v", err)
	}
	return member{dir: dir, cfgPath: cfgPath, sock: sock, gid: g.Gid, exe: exe}
}
