package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/config"
)

// The test binary reads the PC's boot id from the file named by
// CARREL_TEST_BOOT_ID_FILE when it runs as carrel, so a test can stage a
// restart of the PC between two runs of the service.
func init() {
	if p := os.Getenv("CARREL_TEST_BOOT_ID_FILE"); p != "" {
		bootIDSource = func() (string, error) {
			b, err := os.ReadFile(p)
			return strings.TrimSpace(string(b)), err
		}
	}
}

// TestRestartKeepsOpenBookings runs the real service and stops it the ways
// a PC does: a clean stop (SIGTERM: an upgrade, a config roll-out, systemctl
// restart) leaves an open booking open and endable afterwards; SIGKILL
// closes it as interrupted; a clean stop followed by a restart of the PC
// (the boot id changed) closes it too; each says why in the audit log and
// the service log.
func TestRestartKeepsOpenBookings(t *testing.T) {
	_, cfgPath := demo(t, nil)
	bootFile := filepath.Join(t.TempDir(), "boot_id")
	setBoot := func(id string) {
		if err := os.WriteFile(bootFile, []byte(id+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setBoot("boot-1")
	run := func() *service {
		cmd := carrelCmd(t, "run", "--config", cfgPath)
		cmd.Env = append(cmd.Env, "CARREL_TEST_BOOT_ID_FILE="+bootFile)
		return launch(t, cmd, cfgPath)
	}
	cli := func(args ...string) (string, int) {
		return carrelRun(t, append(args, "--config", cfgPath)...)
	}
	book := func(ref string) {
		t.Helper()
		if out, code := cli("booking", "start", "--ref", ref); code != 0 {
			t.Fatalf("booking start %s: %d %s", ref, code, out)
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(ref string) api.Booking {
		t.Helper()
		list, err := api.NewClient(cfg.APIAddr()).List(context.Background(), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range list {
			if b.Ref == ref {
				return b
			}
		}
		t.Fatalf("booking %s is not stored", ref)
		return api.Booking{}
	}
	interruptedEntries := func() []string {
		out, code := cli("audit", "list", "--kind", "booking.interrupted")
		if code != 0 {
			t.Fatalf("audit list: %d %s", code, out)
		}
		return strings.Split(strings.TrimSpace(out), "\n")[1:]
	}

	// A clean stop and start: the booking stays open and ends normally.
	svc := run()
	book("clean-1")
	svc.stop(t)
	svc = run()
	if strings.Contains(svc.log.String(), "closed open bookings") {
		t.Errorf("service log after a clean restart closes bookings:\n%s", svc.log)
	}
	if out, code := cli("booking", "end", "--ref", "clean-1"); code != 0 || !strings.Contains(out, "ended booking clean-1") {
		t.Errorf("booking end after a clean restart: %d %s; want it ended", code, out)
	}
	if b := stored("clean-1"); b.Ended != "ended" {
		t.Errorf("clean-1 = %+v; want ended normally", b)
	}
	if es := interruptedEntries(); len(es) != 0 {
		t.Errorf("booking.interrupted entries after a clean restart: %q; want none", es)
	}

	// SIGKILL: the booking is closed as interrupted, reason unclean-stop.
	book("kill-1")
	svc.kill(t)
	svc = run()
	if out, code := cli("booking", "end", "--ref", "kill-1"); code == 0 || !strings.Contains(out, "no open booking") {
		t.Errorf("booking end after SIGKILL: %d %s; want no open booking", code, out)
	}
	if b := stored("kill-1"); b.Ended != "interrupted" {
		t.Errorf("kill-1 = %+v; want interrupted", b)
	}
	if log := svc.log.String(); !strings.Contains(log, "did not stop cleanly") || !strings.Contains(log, "reason=unclean-stop") {
		t.Errorf("service log after SIGKILL says neither the unclean stop nor the reason:\n%s", log)
	}
	if es := interruptedEntries(); len(es) != 1 || !strings.Contains(es[0], "count=1") || !strings.Contains(es[0], "reason=unclean-stop") {
		t.Errorf("booking.interrupted entries = %q; want one of count 1, reason unclean-stop", es)
	}

	// A clean stop, then the PC restarts: closed as interrupted, reason
	// reboot, at the moment of the clean stop.
	book("reboot-1")
	svc.stop(t)
	stopped := time.Now()
	setBoot("boot-2")
	svc = run()
	b := stored("reboot-1")
	if b.Ended != "interrupted" || b.End == nil || b.End.After(stopped) {
		t.Errorf("reboot-1 = %+v; want interrupted at the clean stop (before %v)", b, stopped)
	}
	if log := svc.log.String(); !strings.Contains(log, "the PC restarted") || !strings.Contains(log, "reason=reboot") {
		t.Errorf("service log after a restart of the PC says neither the restart nor the reason:\n%s", log)
	}
	if es := interruptedEntries(); len(es) != 2 || !strings.Contains(es[1], "reason=reboot") {
		t.Errorf("booking.interrupted entries = %q; want a second one with reason reboot", es)
	}
	if out, _ := cli("audit", "list", "--kind", "service.unclean-stop"); strings.Count(out, "service.unclean-stop") != 1 {
		t.Errorf("service.unclean-stop entries:\n%s\nwant only the one of the SIGKILL", out)
	}

	// SIGKILL and a restart of the PC: reason unclean-reboot, and the
	// unclean stop says the boot changed.
	book("power-1")
	svc.kill(t)
	setBoot("boot-3")
	svc = run()
	if b := stored("power-1"); b.Ended != "interrupted" {
		t.Errorf("power-1 = %+v; want interrupted", b)
	}
	if es := interruptedEntries(); len(es) != 3 || !strings.Contains(es[2], "reason=unclean-reboot") {
		t.Errorf("booking.interrupted entries = %q; want a third one with reason unclean-reboot", es)
	}
	if out, _ := cli("audit", "list", "--kind", "service.unclean-stop"); !strings.Contains(out, "boot=changed") {
		t.Errorf("service.unclean-stop entries:\n%s\nwant one with boot=changed", out)
	}
	if out, code := cli("audit", "verify"); code != 0 {
		t.Errorf("audit verify: %d %s", code, out)
	}
	svc.stop(t)
}
