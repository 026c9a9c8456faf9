package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestDiskFull runs the service on a small real tmpfs and fills it: a
// booking that cannot be stored gets 507 "disk full" (not 500), status and
// the service log say so, every acknowledged booking is kept, and once
// space returns bookings work again.
func TestDiskFull(t *testing.T) {
	dir, data := smallDisk(t)
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	ctx := context.Background()

	acked := map[string]bool{} // ref -> ended
	for i := 0; i < 20; i++ {
		ref := fmt.Sprintf("before-%d", i)
		if _, err := h.client.Start(ctx, api.StartRequest{Ref: ref, Patron: "12345678"}); err != nil {
			t.Fatalf("Start(%s) with space = %v", ref, err)
		}
		acked[ref] = false
		if i%2 == 0 {
			if _, err := h.client.End(ctx, ref); err != nil {
				t.Fatalf("End(%s) with space = %v", ref, err)
			}
			acked[ref] = true
		}
	}

	// Fill the file system to the last byte.
	filler := filepath.Join(data, "filler")
	fillUp(t, filler)

	// Book until the register has no room left either (SQLite may still
	// have free pages in its files). Every acknowledged booking counts.
	var full *api.StatusError
	for i := 0; full == nil; i++ {
		if i > 100000 {
			t.Fatal("bookings still succeed on a full disk after 100000 tries")
		}
		ref := fmt.Sprintf("filling-%d", i)
		_, err := h.client.Start(ctx, api.StartRequest{Ref: ref})
		switch {
		case err == nil:
			acked[ref] = false
		case errors.As(err, &full):
		default:
			t.Fatalf("Start(%s) on a full disk = %v; want a status error", ref, err)
		}
	}
	if full.Code != http.StatusInsufficientStorage || !strings.Contains(full.Msg, "disk full") {
		t.Errorf("Start on a full disk = %d %q; want 507 saying disk full", full.Code, full.Msg)
	}
	st, err := h.client.Status(ctx)
	if err != nil {
		t.Fatalf("Status() on a full disk = %v", err)
	}
	if st.DiskFull == nil || st.DiskFull.Refused < 1 || st.DiskFull.Since.IsZero() {
		t.Errorf("Status().DiskFull = %+v; want the refused booking reported", st.DiskFull)
	}
	if !strings.Contains(h.log.String(), "disk full") {
		t.Errorf("service log does not say disk full:\n%s", h.log)
	}

	// Space returns: bookings work again, status clears.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Start(ctx, api.StartRequest{Ref: "after-1"}); err != nil {
		t.Fatalf("Start() after space returned = %v", err)
	}
	acked["after-1"] = false
	if st, err := h.client.Status(ctx); err != nil || st.DiskFull != nil {
		t.Errorf("Status() after space returned = %+v, %v; want no disk-full report", st.DiskFull, err)
	}

	// Nothing acknowledged is lost, also across a restart.
	h.stop(t)
	h = start(t, dir, nil)
	list, err := h.client.List(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]api.Booking{}
	for _, b := range list {
		stored[b.Ref] = b
	}
	for ref, ended := range acked {
		b, ok := stored[ref]
		switch {
		case !ok:
			t.Errorf("acknowledged booking %s is lost", ref)
		case ended && b.Ended != "ended":
			t.Errorf("booking %s was acknowledged as ended, stored as %q", ref, b.Ended)
		case !ended && b.Ended != "":
			t.Errorf("booking %s was acknowledged open, stored as %q", ref, b.Ended)
		}
	}
	t.Logf("%d bookings acknowledged, %d of them while the disk filled; refusal: %d %q", len(acked), len(acked)-21, full.Code, full.Msg)
}

// smallDisk returns a folder whose data folder is a small real tmpfs,
// unmounted when t ends.
func smallDisk(t *testing.T) (dir, data string) {
	t.Helper()
	testenv.NeedRoot(t)
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})
	return dir, data
}

// fillRegister books until the register refuses for want of space (SQLite
// may have free pages left in its files after the file system is full).
func fillRegister(t *testing.T, h *harness) {
	t.Helper()
	var full *api.StatusError
	for i := 0; full == nil; i++ {
		if i > 100000 {
			t.Fatal("bookings still succeed on a full disk after 100000 tries")
		}
		_, err := h.client.Start(context.Background(), api.StartRequest{Ref: fmt.Sprintf("filling-%d", i)})
		if err != nil && !errors.As(err, &full) {
			t.Fatalf("Start on a full disk = %v; want a status error", err)
		}
	}
}

// TestDiskFullHeartbeatLogsOnce: while the data disk is full the heartbeat
// fails at every tick; the service log says so once, with the cause, and
// once more when it recovers, with how long it failed — not at every tick.
func TestDiskFullHeartbeatLogsOnce(t *testing.T) {
	dir, data := smallDisk(t)
	writeConfig(t, dir, "")
	oldEvery, oldHook := heartbeatEvery, testHookHeartbeat
	heartbeatEvery = 5 * time.Millisecond
	beats := make(chan error, 1024)
	testHookHeartbeat = func(err error) {
		select {
		case beats <- err:
		default: // the test reads only as many as it needs
		}
	}
	t.Cleanup(func() { heartbeatEvery, testHookHeartbeat = oldEvery, oldHook })
	h := start(t, dir, nil) // stopped (a cleanup) before the hook is restored

	filler := filepath.Join(data, "filler")
	fillUp(t, filler)
	fillRegister(t, h)
	// Wait for 50 heartbeats in a row that failed.
	failed := 0
	deadline := time.After(hangGuard)
	for failed < 50 {
		select {
		case err := <-beats:
			if err == nil {
				failed = 0
			} else {
				failed++
			}
		case <-deadline:
			t.Fatalf("no 50 failed heartbeats in a row on a full disk within %s (%d)\n%s", hangGuard, failed, h.log)
		}
	}
	heartbeatLines := func() (failures, recoveries []string) {
		for _, line := range strings.Split(h.log.String(), "\n") {
			switch {
			case strings.Contains(line, "heartbeat") && strings.Contains(line, "level=ERROR"):
				failures = append(failures, line)
			case strings.Contains(line, "heartbeat recovered"):
				recoveries = append(recoveries, line)
			}
		}
		return failures, recoveries
	}
	if failures, _ := heartbeatLines(); len(failures) != 1 || !strings.Contains(failures[0], "disk full") {
		t.Errorf("after 50 failed heartbeats the log has %d heartbeat errors; want one that says disk full:\n%s",
			len(failures), strings.Join(failures, "\n"))
	}

	// Space returns: the next heartbeat works, and the log says so once,
	// with how long it failed.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for ok := 0; ok < 3; {
		select {
		case err := <-beats:
			if err == nil {
				ok++
			}
		case <-deadline:
			t.Fatalf("heartbeats did not recover once space returned\n%s", h.log)
		}
	}
	failures, recoveries := heartbeatLines()
	if len(failures) != 1 || len(recoveries) != 1 || !regexp.MustCompile(`failed_for=[0-9][0-9.hmµ]*s `).MatchString(recoveries[0]) {
		t.Fatalf("log after recovery: %d heartbeat errors, recoveries %q; want one error and one recovery saying for how long", len(failures), recoveries)
	}
	t.Logf("the log says:\n%s\n%s", failures[0], recoveries[0])
}

// fillUp writes path until the file system says it is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if len(chunk) > 1 {
				chunk = chunk[:len(chunk)/2]
				continue
			}
			return
		}
	}
}
