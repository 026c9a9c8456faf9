package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/export"
	"github.com/carrel-lib/carrel/internal/seal"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		p    export.Progress
		want string
	}{
		{export.Progress{FilesTotal: 3, BytesTotal: 1 << 30}, "exporting: 0/3 files, 0 B of 1.0 GiB traffic"},
		{export.Progress{Files: 2, FilesTotal: 9, Bytes: 256 << 20, BytesTotal: 1 << 30, Elapsed: 10 * time.Second},
			"exporting: 2/9 files, 256.0 MiB of 1.0 GiB traffic, about 30s left"},
		{export.Progress{Files: 9, FilesTotal: 9, Bytes: 1 << 30, BytesTotal: 1 << 30, Elapsed: 41 * time.Second, Done: true},
			"exporting: 9/9 files, 1.0 GiB of 1.0 GiB traffic, done in 41s"},
	}
	for _, tt := range tests {
		if got := progressLine(tt.p); got != tt.want {
			t.Errorf("progressLine(%+v) = %q; want %q", tt.p, got, tt.want)
		}
	}
}

// TestProgressPrinterQuietOffTerminal: a buffer (a pipe, a log) gets no
// progress callback at all.
func TestProgressPrinterQuietOffTerminal(t *testing.T) {
	if progressPrinter(&bytes.Buffer{}) != nil {
		t.Error("progressPrinter(buffer) != nil; want no progress off a terminal")
	}
}

// exportFixture is a PC's config with the head librarian's key in
// capture.recipients and an empty data folder, as after `carrel config
// init`; it returns the config's path and the key file.
func exportFixture(t *testing.T) (dir, cfg, key string) {
	t.Helper()
	dir = t.TempDir()
	key = filepath.Join(dir, "librarian.key")
	recipient, err := seal.WriteIdentityFile(key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, code := carrelRun(t, "config", "init", "--data-dir", filepath.Join(dir, "data"), "--recipient", recipient)
	if code != 0 {
		t.Fatalf("config init: %d %s", code, out)
	}
	cfg = filepath.Join(dir, "carrel.toml")
	if err := os.WriteFile(cfg, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, cfg, key
}

// exportUntil runs `carrel export` of the fixture to dir/bundle, sends sig
// when it reports step, and returns its exit code and standard error.
func exportUntil(t *testing.T, dir, cfg, key, step string, sig syscall.Signal) (int, string) {
	t.Helper()
	cmd := carrelCmd(t, "export", "--config", cfg, "--order", "RET 2026/42", "--court", "Retten i Testby",
		"--requester", "Testby Police", "--exporter", "Head Librarian", "--from", "2026-03-02T10:00:00Z",
		"--to", "2026-03-02T12:00:00Z", "--identity", key, "--out", filepath.Join(dir, "bundle"))
	cmd.Env = append(cmd.Env, "CARREL_TEST_EXPORT_WAIT="+step)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		errOut.WriteString(sc.Text() + "\n")
		if sc.Text() == "step "+step {
			cmd.Process.Signal(sig)
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), errOut.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, errOut.String()
}

// TestExportInterrupted: the real binary, interrupted at a step it reported
// (issue 10, item 8). A closed terminal (SIGHUP) and SIGTERM stop it like
// Ctrl-C: no folder is left, export.fail is recorded. SIGKILL after the
// bundle was moved into place and before export.end leaves a bundle that
// `export verify` calls unfinished, and `export clean` removes it and
// records that.
func TestExportInterrupted(t *testing.T) {
	for _, tt := range []struct {
		step string
		sig  syscall.Signal
	}{{"bookings", syscall.SIGHUP}, {"audit", syscall.SIGTERM}, {"rename", syscall.SIGHUP}} {
		t.Run(tt.step+"/"+tt.sig.String(), func(t *testing.T) {
			dir, cfg, key := exportFixture(t)
			code, errOut := exportUntil(t, dir, cfg, key, tt.step, tt.sig)
			if code != 1 || !strings.Contains(errOut, "context canceled") {
				t.Fatalf("carrel export stopped at %s with %s: exit %d\n%s", tt.step, tt.sig, code, errOut)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), "bundle") {
					t.Errorf("%s left after the export was stopped", e.Name())
				}
			}
			out, _ := carrelRun(t, "audit", "list", "--config", cfg, "--kind", "export.fail")
			if !strings.Contains(out, "cancelled") {
				t.Errorf("audit list --kind export.fail:\n%s\nwant the cancelled export", out)
			}
		})
	}
	t.Run("in-place/killed", func(t *testing.T) {
		dir, cfg, key := exportFixture(t)
		exportUntil(t, dir, cfg, key, "in-place", syscall.SIGKILL)
		bundle := filepath.Join(dir, "bundle")
		out, code := carrelRun(t, "export", "verify", bundle)
		if code != 1 || !strings.Contains(out, "signature/: missing: the bundle was never signed") || !strings.Contains(out, "hint: an export was interrupted") {
			t.Errorf("export verify of the bundle a kill left = %d\n%s", code, out)
		}
		if out, _ := carrelRun(t, "audit", "list", "--config", cfg, "--kind", "export.end"); strings.Contains(out, "export.end") {
			t.Errorf("export.end recorded for a bundle that was never finished:\n%s", out)
		}
		out, code = carrelRun(t, "export", "clean", "--config", cfg)
		if code != 0 || !strings.Contains(out, "removed "+bundle+", the unfinished bundle of order \"RET 2026/42\" left by an export that was killed") {
			t.Errorf("export clean = %d\n%s", code, out)
		}
		if _, err := os.Lstat(bundle); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the unfinished bundle is still there after export clean: %v", err)
		}
		if out, _ := carrelRun(t, "audit", "list", "--config", cfg, "--kind", "export.cleaned"); !strings.Contains(out, "outcome=removed") {
			t.Errorf("audit list --kind export.cleaned:\n%s", out)
		}
		if out, code := carrelRun(t, "export", "clean", "--config", cfg); code != 0 || !strings.Contains(out, "no unfinished export to clean up") {
			t.Errorf("second export clean = %d\n%s", code, out)
		}
		if out, code := carrelRun(t, "audit", "verify", "--config", cfg); code != 0 {
			t.Errorf("audit verify after the clean-up = %d\n%s", code, out)
		}
	})
}
