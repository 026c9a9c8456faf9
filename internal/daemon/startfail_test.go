package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/audit"
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
