package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestFailedListenIsACleanStop: when the API socket cannot be made (a
// file is in its way), the service says so, records its stop and leaves
// no run marker, so the next start does not report an unclean stop that
// never happened (and does not close open bookings for it).
func TestFailedListenIsACleanStop(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	sock := filepath.Join(dir, "data", "api.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Options{ConfigPath: cfgPath, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "not a socket is in the way") {
		t.Fatalf("Run() = %v; want the file in the socket's way named", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", runningFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run marker after a failed start: %v; want none", err)
	}
	stops := entries(t, dir, audit.ServiceStop)
	if len(stops) != 1 || field(stops[0], "reason") != "start-failed" {
		t.Errorf("service.stop entries = %+v; want one, reason start-failed", stops)
	}

	os.Remove(sock)
	start(t, dir, nil).stop(t)
	if n := len(entries(t, dir, audit.ServiceUncleanStop)); n != 0 {
		t.Errorf("service.unclean-stop entries after a failed start and a clean run = %d; want 0", n)
	}
}

// TestEmptyPatronKey: a patron key left empty (an older carrel killed
// while it made the key on its first start) stops the start with an error
// that names the file and the fix, and says whether deleting it costs
// anything; the file is never replaced behind the operator's back.
func TestEmptyPatronKey(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	key := filepath.Join(dir, "data", patronKey)
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() error {
		return Run(context.Background(), Options{ConfigPath: cfgPath, Log: slog.New(slog.DiscardHandler)})
	}
	// The first start's case: no register yet, deleting the key is free.
	err := run()
	if !errors.Is(err, booking.ErrSecretDamaged) {
		t.Fatalf("Run() with an empty patron key = %v; want ErrSecretDamaged", err)
	}
	for _, want := range []string{key, "is empty", "restore it from a backup", "no booking register yet", "loses nothing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run() with an empty patron key = %q; want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "/proc/self/fd") {
		t.Errorf("Run() = %q; want the data folder named, not its descriptor", err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Size() != 0 {
		t.Errorf("patron key after the refused start: %v, %v; want it left as it was", fi, err)
	}

	// With bookings stored, deleting it is not free: no such reassurance.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	h := start(t, dir, nil)
	if _, err := h.client.Start(context.Background(), api.StartRequest{Ref: "r-1", Patron: "12345678"}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	if err := os.Truncate(key, 0); err != nil {
		t.Fatal(err)
	}
	err = run()
	if !errors.Is(err, booking.ErrSecretDamaged) || strings.Contains(err.Error(), "loses nothing") ||
		!strings.Contains(err.Error(), "carrel booking list --patron") {
		t.Errorf("Run() with an empty patron key beside a register = %v; want the cost of deleting it said, no reassurance", err)
	}
}

// TestReadOnlyDataDirUnderSystemd: a data folder on a read-only file
// system — what the unit's ProtectSystem=strict makes of any folder but
// /var/lib/carrel — stops the start, and under systemd (INVOCATION_ID
// set) the error carries the drop-in that fixes it: for a folder that
// does not exist yet, to create it first. Run by hand, no such hint.
func TestReadOnlyDataDirUnderSystemd(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", ro).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", ro, err, out)
		}
	})
	for _, c := range []struct {
		name, dataDir string
		create        bool // the hint says to create the folder first
	}{
		{"missing folder", filepath.Join(ro, "carrel"), true},
		{"existing folder", ro, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfgPath := writeConfig(t, dir, "")
			doc, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			doc = bytes.Replace(doc, []byte("data_dir = '"+filepath.Join(dir, "data")+"'"), []byte("data_dir = '"+c.dataDir+"'"), 1)
			replaceConfig(t, cfgPath, doc)
			run := func() error {
				return Run(context.Background(), Options{ConfigPath: cfgPath, Log: slog.New(slog.DiscardHandler)})
			}

			t.Setenv("INVOCATION_ID", "")
			err = run()
			var h interface{ Hint() string }
			if !errors.Is(err, syscall.EROFS) || errors.As(err, &h) {
				t.Fatalf("Run() by hand on a read-only data folder = %v; want read-only file system, and no systemd hint", err)
			}

			t.Setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
			err = run()
			if !errors.Is(err, syscall.EROFS) || !errors.As(err, &h) {
				t.Fatalf("Run() under systemd on a read-only data folder = %v; want read-only file system with a hint", err)
			}
			wants := []string{"systemctl edit carrel", "[Service]\nReadWritePaths=" + c.dataDir, "systemctl restart carrel"}
			if c.create {
				wants = append(wants, "install -d -m 0700 "+c.dataDir)
			}
			for _, want := range wants {
				if !strings.Contains(h.Hint(), want) {
					t.Errorf("hint = %q; want it to say %q", h.Hint(), want)
				}
			}
			if !c.create && strings.Contains(h.Hint(), "install -d") {
				t.Errorf("hint for an existing folder = %q; want no word of creating it", h.Hint())
			}
			if strings.Contains(err.Error(), "/proc/self/fd") {
				t.Errorf("Run() = %q; want the folder named, not its descriptor", err)
			}
			t.Logf("%s:\n%v\nhint: %s", c.name, err, h.Hint())
		})
	}
}
