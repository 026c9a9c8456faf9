package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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
	log  *bytes.Buffer
	done chan error
}

func startService(t *testing.T, cfgPath string) *service {
	t.Helper()
	return launch(t, carrelCmd(t, "run", "--config", cfgPath), cfgPath)
}

// launch starts cmd, a `carrel run` on cfgPath, and waits until its API
// answers. Cleanup stops it (SIGTERM, then SIGKILL) and shows its log when
// the test failed.
func launch(t *testing.T, cmd *exec.Cmd, cfgPath string) *service {
	t.Helper()
	s := &service{cmd: cmd, log: new(bytes.Buffer), done: make(chan error, 1)}
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
			case <-time.After(10 * time.Second):
				s.cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("carrel log:\n%s", s.log)
		}
	})
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(cfg.APIAddr())
	deadline := time.Now().Add(20 * time.Second)
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
			t.Fatalf("carrel run not ready after 20s\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *service) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("carrel run after SIGTERM: %v\n%s", err, s.log)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("carrel run did not stop within 15s of SIGTERM\n%s", s.log)
	}
}

func (s *service) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// TestKillLosesNoAcknowledgedBooking records bookings through the CLI and
// the socket while the service is SIGKILLed at random moments, restarts it,
// and checks that every booking the service acknowledged is there and that
// bookings left open are closed as interrupted.
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

	rounds := 3
	if testenv.Long() {
		rounds = 20
	}
	n := 0
	for round := 0; round < rounds; round++ {
		var mu sync.Mutex
		stop := make(chan struct{})
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
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		svc.kill(t)
		close(stop)
		wg.Wait()
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
	if len(acked) < 20 || interrupted == 0 {
		t.Errorf("only %d acknowledged bookings, %d interrupted: the test did not exercise the crash", len(acked), interrupted)
	}
	if !stored["cli-1"].HasPatron || stored["cli-1"].Ended != "interrupted" {
		t.Errorf("CLI booking = %+v; want patron stored and interrupted", stored["cli-1"])
	}
	t.Logf("%d bookings acknowledged over %d kills, %d closed as interrupted", len(acked), rounds, interrupted)
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
