package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// service is a running `carrel run`.
type service struct {
	cmd  *exec.Cmd
	log  *testenv.Buffer
	done chan error
}

// hangDeadline bounds every wait for the service: far longer than any
// step takes on a loaded machine, it only stops a test that would hang.
const hangDeadline = 60 * time.Second

func startService(t *testing.T, cfgPath string) *service {
	t.Helper()
	return launch(t, carrelCmd(t, "run", "--config", cfgPath), cfgPath)
}

// launch starts cmd, a `carrel run` on cfgPath, and waits until its API
// answers. Cleanup stops it (SIGTERM, then SIGKILL) and shows its log when
// the test failed.
func launch(t *testing.T, cmd *exec.Cmd, cfgPath string) *service {
	t.Helper()
	s := spawn(t, cmd)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(cfg.APIAddr())
	deadline := time.Now().Add(hangDeadline)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("carrel run exited early: %v\n%s", err, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrel run not ready after %s\n%s", hangDeadline, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spawn starts cmd without waiting for anything.
func spawn(t *testing.T, cmd *exec.Cmd) *service {
	t.Helper()
	s := &service{cmd: cmd, log: new(testenv.Buffer), done: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(hangDeadline):
				s.cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("carrel log:\n%s", s.log)
		}
	})
	return s
}

// waitLog waits until the service's log holds want; it reports false if
// the service exited first.
func (s *service) waitLog(t *testing.T, want string) bool {
	t.Helper()
	deadline := time.Now().Add(hangDeadline)
	for !strings.Contains(s.log.String(), want) {
		select {
		case err := <-s.done:
			s.done <- err
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrel run did not log %q within %s\n%s", want, hangDeadline, s.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (s *service) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("carrel run after SIGTERM: %v\n%s", err, s.log)
		}
	case <-time.After(hangDeadline):
		t.Fatalf("carrel run did not stop within %s of SIGTERM\n%s", hangDeadline, s.log)
	}
}

func (s *service) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// TestKillLosesNoAcknowledgedBooking records bookings through the CLI and
// the socket while the service is SIGKILLed, restarts it, and checks that
// every booking the service acknowledged is there and that bookings left
// open are closed as interrupted.
//
// The kills follow what the clients saw, not the clock: each round kills
// once the clients have k acknowledgements in that round (k = 0: right
// after the service is ready, with requests in flight). Every other round
// also kills the next start early, during start-up, before the restart
// that recovers: right after exec, or once the new run has logged that it
// found the unclean stop (it is then closing the open bookings).
func TestKillLosesNoAcknowledgedBooking(t *testing.T) {
	_, cfgPath := demo(t, nil)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	client := api.NewClient(cfg.APIAddr())
	ctx := context.Background()

	acked := map[string]string{} // ref -> "open" or "ended" as acknowledged
	svc := startService(t, cfgPath)
	if out, code := carrelRun(t, "booking", "start", "--config", cfgPath, "--ref", "cli-1", "--patron", "55501234"); code != 0 {
		t.Fatalf("booking start via CLI: %d %s", code, out)
	}
	acked["cli-1"] = "open"

	schedule := []int{0, 12, 25, 3}
	if testenv.Long() {
		schedule = []int{0, 1, 2, 5, 8, 12, 20, 25, 40, 60, 0, 3, 7, 15, 30, 50, 1, 10, 35, 80}
	}
	want := 0
	for _, k := range schedule {
		want += k
	}
	n, earlyKills := 0, 0
	for round, k := range schedule {
		var mu sync.Mutex
		stop := make(chan struct{})
		reached := make(chan struct{})
		var once sync.Once
		if k == 0 {
			once.Do(func() { close(reached) })
		}
		roundAcks := 0
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					n++
					ref := fmt.Sprintf("r%d-w%d-%d", round, w, n)
					mu.Unlock()
					if _, err := client.Start(ctx, api.StartRequest{Ref: ref}); err != nil {
						continue // not acknowledged: may or may not be stored
					}
					mu.Lock()
					acked[ref] = "open"
					roundAcks++
					if roundAcks >= k {
						once.Do(func() { close(reached) })
					}
					mu.Unlock()
					if i%2 == 0 {
						if _, err := client.End(ctx, ref); err == nil {
							mu.Lock()
							acked[ref] = "ended"
							mu.Unlock()
						}
					}
				}
			}(w)
		}
		select {
		case <-reached:
		case <-time.After(hangDeadline):
			t.Fatalf("round %d: %d of %d acknowledgements within %s", round, roundAcks, k, hangDeadline)
		}
		svc.kill(t)
		close(stop)
		wg.Wait()
		if round%2 == 1 {
			early := spawn(t, carrelCmd(t, "run", "--config", cfgPath))
			if round%4 == 3 && early.waitLog(t, "did not stop cleanly") {
				earlyKills++
			} else if round%4 == 1 {
				earlyKills++
			}
			early.kill(t)
		}
		svc = startService(t, cfgPath)
	}

	list, err := client.List(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]api.Booking{}
	for _, b := range list {
		stored[b.Ref] = b
	}
	for ref, state := range acked {
		b, ok := stored[ref]
		if !ok {
			t.Errorf("acknowledged booking %s is missing after SIGKILL", ref)
			continue
		}
		if state == "ended" && b.Ended != "ended" {
			t.Errorf("booking %s: acknowledged as ended, stored as %q", ref, b.Ended)
		}
		if b.Ended == "" {
			t.Errorf("booking %s is still open after restart; want interrupted", ref)
		}
		if b.End != nil && b.End.Before(b.Start) {
			t.Errorf("booking %s ends before it starts", ref)
		}
	}
	interrupted := 0
	for _, b := range list {
		if b.Ended == "interrupted" {
			interrupted++
		}
	}
	// Guaranteed by the schedule, not hoped for from the timing.
	if len(acked) < 1+want || interrupted == 0 || earlyKills < len(schedule)/2 {
		t.Errorf("%d acknowledged bookings (want ≥ %d), %d interrupted, %d early kills: the test did not exercise the crash", len(acked), 1+want, interrupted, earlyKills)
	}
	if !stored["cli-1"].HasPatron || stored["cli-1"].Ended != "interrupted" {
		t.Errorf("CLI booking = %+v; want patron stored and interrupted", stored["cli-1"])
	}
	t.Logf("%d bookings acknowledged over %d kills and %d early kills, %d closed as interrupted", len(acked), len(schedule), earlyKills, interrupted)
	svc.stop(t)
}

// TestBookingClientGroup runs the real CLI as other accounts: a member of
// the booking-client group may record bookings; an account outside it is
// refused and nothing is stored.
func TestBookingClientGroup(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "setpriv", "groupadd", "groupdel")
	group := fmt.Sprintf("carrel-e2e-%d", os.Getpid()%100000)
	if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	dir, cfgPath := demo(t, func(s string) string {
		s = strings.Replace(s, `client_group = "carrel-booking"`, `client_group = "`+group+`"`, 1)
		return s
	})
	// Other accounts must be able to reach the config and the socket's
	// folder; the socket's own mode and the service decide the rest.
	runDir := filepath.Join(dir, "run")
	os.Mkdir(runDir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	b, _ := os.ReadFile(cfgPath)
	b = bytes.Replace(b, []byte(filepath.Join(dir, "data", "api.sock")), []byte(filepath.Join(runDir, "api.sock")), 1)
	os.WriteFile(cfgPath, b, 0o644)
	svc := startService(t, cfgPath)

	// A copy of this binary that other accounts may execute.
	exe := filepath.Join(dir, "carrel")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(exe, b, 0o755) != nil {
		t.Fatalf("copying the test binary: %v", err)
	}
	as := func(groups string, args ...string) (string, error) {
		argv := append([]string{"--reuid=65534", "--regid=65534", "--groups=" + groups, "env", "CARREL_TEST_MAIN=1", exe}, args...)
		if groups == "" {
			argv[2] = "--clear-groups"
		}
		out, err := exec.Command("setpriv", argv...).CombinedOutput()
		return string(out), err
	}
	out, err := as(g.Gid, "booking", "start", "--config", cfgPath, "--ref", "member-1")
	if err != nil || !strings.Contains(out, "started booking member-1") {
		t.Errorf("group member: %q, %v; want the booking started", out, err)
	}
	out, err = as("", "booking", "start", "--config", cfgPath, "--ref", "outsider-1")
	if err == nil || !strings.Contains(out, "permission denied") || !strings.Contains(out, "hint: only root") {
		t.Errorf("outsider: %q, %v; want permission denied", out, err)
	}
	list, err := api.NewClient(filepath.Join(runDir, "api.sock")).List(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Ref != "member-1" {
		t.Errorf("stored bookings = %+v; want only member-1", list)
	}
	fi, err := os.Stat(filepath.Join(runDir, "api.sock"))
	if st, ok := fi.Sys().(*syscall.Stat_t); err != nil || !ok || fmt.Sprint(st.Gid) != g.Gid || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket = %v %v; want mode 0660 group %s", fi.Mode(), err, group)
	}
	svc.stop(t)
}
