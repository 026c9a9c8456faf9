package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
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
