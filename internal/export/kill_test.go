package export

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// The kill test re-executes this test binary as an export: with
// killChildEnv set, TestMain runs killChild instead of the tests.
const (
	killChildEnv = "CARREL_EXPORT_KILL_CHILD" // the fixture's root folder
	killStepEnv  = "CARREL_EXPORT_KILL_STEP"  // the step to wait at until a signal comes
)

// killChild exports the fixture in root, as `carrel export` does: its
// context ends on SIGINT, SIGTERM or SIGHUP. It prints "step NAME" as it
// enters each step and, at the step named by killStepEnv, waits until a
// signal ends its context (or its standard input closes: the parent died).
func killChild(root, waitAt string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	cfg, err := config.Load(filepath.Join(root, "carrel.toml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	parentGone := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(parentGone) }()
	out := bufio.NewWriter(os.Stdout)
	o := Options{
		Order:        Order{Ref: "RET-2026-0042", Court: "Retten i Testby", Requester: "Testby Police", Exporter: "Head Librarian"},
		Window:       Window{From: at("10:00"), To: at("12:00")},
		IdentityFile: filepath.Join(root, "head-librarian.key"), Out: filepath.Join(root, "bundle"),
		Config: cfg, Version: "test", Actor: "uid:0", Host: "test-host",
		Step: func(ctx context.Context, step string) {
			fmt.Fprintf(out, "step %s\n", step)
			out.Flush()
			if step == waitAt {
				select {
				case <-ctx.Done():
				case <-parentGone:
					os.Exit(4)
				}
			}
		},
	}
	if _, err := Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// killFixture is the standard fixture, closed, to be copied for each kill.
func killFixture(t *testing.T) string {
	t.Helper()
	f := standard(t)
	f.close()
	return f.root
}

// copyFixture copies the fixture in from to a new folder and points its
// config at the copy's data folder.
func copyFixture(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	copyTree(t, from, to)
	cfgPath := filepath.Join(to, "carrel.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, bytes.ReplaceAll(b, []byte(from), []byte(to)), 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestKillExport interrupts an export in a child process at each of its
// steps, relative to what the child reported: with SIGTERM, SIGHUP and
// SIGINT, which it must handle like Ctrl-C, and with SIGKILL, after which
// Clean (`carrel export clean`, or the next export) must finish the job.
// Whatever the signal and the step: no folder holding decrypted traffic
// stays but a finished bundle; a bundle in place verifies only once it is
// signed, and one that is not is unfinished (ErrUnfinished); export.end
// is recorded only with a bundle in place; the legal holds the export
// placed are lifted unless it finished; the audit log verifies.
func TestKillExport(t *testing.T) {
	fixture := killFixture(t)
	inPlace := slices.Index(Steps, "in-place")
	type kill struct {
		step string
		sig  syscall.Signal
	}
	var kills []kill
	for _, step := range Steps {
		kills = append(kills, kill{step, syscall.SIGKILL}, kill{step, syscall.SIGTERM})
	}
	for _, step := range []string{"folder", "traffic", "manifests", "rename", "in-place"} {
		kills = append(kills, kill{step, syscall.SIGHUP})
	}
	for _, step := range []string{"audit", "end"} {
		kills = append(kills, kill{step, syscall.SIGINT})
	}
	for _, k := range kills {
		t.Run(k.step+"/"+k.sig.String(), func(t *testing.T) {
			root := copyFixture(t, fixture)
			code, stderr := runKillChild(t, root, k.step, k.sig)
			finished := slices.Index(Steps, k.step) >= inPlace
			switch {
			case k.sig == syscall.SIGKILL:
			case finished && code != 0:
				t.Fatalf("export interrupted after the bundle was in place: exit %d; want it to finish\n%s", code, stderr)
			case !finished && (code != 1 || !strings.Contains(stderr, "context canceled")):
				t.Fatalf("export interrupted at %s: exit %d, %q; want 1 and the cancellation", k.step, code, stderr)
			}
			checkAfterKill(t, root, k.step, k.sig)
		})
	}
}

// runKillChild runs the export in root, sends sig when it reports step,
// and returns its exit code and standard error.
func runKillChild(t *testing.T, root, step string, sig syscall.Signal) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+root, killStepEnv+"="+step)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "step "+step && !reached {
			reached = true
			cmd.Process.Signal(sig)
		}
	}
	err = cmd.Wait()
	if !reached {
		t.Fatalf("the export never reached step %s: %v\n%s", step, err, stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatal(err)
	return -1, ""
}

func checkAfterKill(t *testing.T, root, step string, sig syscall.Signal) {
	t.Helper()
	ctx := context.Background()
	out := filepath.Join(root, "bundle")
	cfg, err := config.Load(filepath.Join(root, "carrel.toml"))
	if err != nil {
		t.Fatal(err)
	}
	signedAt := slices.Index(Steps, "signed")
	if sig == syscall.SIGKILL {
		// What the kill left, before anyone cleans up.
		_, statErr := os.Stat(out)
		ended := len(auditKinds(t, cfg, audit.ExportEnd)) > 0
		if ended && statErr != nil {
			t.Errorf("killed at %s: export.end is recorded and there is no bundle", step)
		}
		if statErr == nil {
			_, verr := VerifyDir(out, VerifyOptions{})
			if slices.Index(Steps, step) < signedAt && !errors.Is(verr, ErrUnfinished) {
				t.Errorf("killed at %s: the bundle left in place verifies as %v; want it unfinished", step, verr)
			}
		}
		cleaned, err := Clean(ctx, Options{Config: cfg, Actor: "uid:0"})
		if err != nil || len(cleaned) != 1 || cleaned[0].Err != nil {
			t.Fatalf("Clean after a kill at %s = %+v, %v; want one export cleaned", step, cleaned, err)
		}
		want := map[string]string{"start": "none", "hold": "none", "in-place": "removed", "end": "signed", "signed": "kept"}[step]
		if want == "" {
			want = "removed"
		}
		if cleaned[0].Outcome != want || cleaned[0].Order != "RET-2026-0042" {
			t.Errorf("Clean after a kill at %s = %+v; want outcome %s", step, cleaned[0], want)
		}
		if again, err := Clean(ctx, Options{Config: cfg, Actor: "uid:0"}); err != nil || len(again) != 0 {
			t.Errorf("a second Clean = %+v, %v; want nothing left to do", again, err)
		}
	}
	finished := len(auditKinds(t, cfg, audit.ExportEnd)) > 0
	if finished {
		if _, err := VerifyDir(out, VerifyOptions{}); err != nil {
			t.Errorf("after the export recorded export.end: VerifyDir = %v", err)
		}
	} else if _, err := os.Lstat(out); err == nil {
		t.Errorf("a bundle without export.end is left at %s", out)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".partial-") {
			t.Errorf("%s left beside the bundle", e.Name())
		}
	}
	if finished {
		if n, _ := os.ReadDir(out); slices.ContainsFunc(n, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), signatureTemp) }) {
			t.Errorf("a half-written signature left in the bundle")
		}
	}
	assertNoMarker(t, cfg.Storage.DataDir)
	// The holds stay with a finished export and go with one that did not.
	s, err := seal.Open(ctx, cfg.Storage.DataDir, seal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := s.Segments(ctx, seal.Filter{})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, seg := range segs {
		held += len(seg.Holds)
	}
	if want := map[bool]int{true: 3, false: 0}[finished]; held != want {
		t.Errorf("killed at %s with %s: %d segments held; want %d", step, sig, held, want)
	}
	// Every export.start is closed: export.end, export.fail or export.cleaned.
	closed := len(auditKinds(t, cfg, audit.ExportEnd, audit.ExportFail, audit.ExportCleaned))
	if closed == 0 {
		t.Errorf("killed at %s with %s: export.start is followed by neither export.end, export.fail nor export.cleaned", step, sig)
	}
	l, err := audit.Open(filepath.Join(cfg.Storage.DataDir, audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Verify(ctx, audit.VerifyOptions{}); err != nil {
		t.Errorf("audit log after a kill at %s with %s: %v", step, sig, err)
	}
}

// auditKinds returns the entries of the given kinds in cfg's audit log.
func auditKinds(t *testing.T, cfg *config.Config, kinds ...audit.Kind) []audit.Entry {
	t.Helper()
	l, err := audit.Open(filepath.Join(cfg.Storage.DataDir, audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Entries(context.Background(), audit.Query{Kinds: kinds})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestCleanEmptyOrTornMarker: a marker that a kill left before its first
// line was whole (created, then written: an empty file, or half a line)
// is removed by Clean with nothing else done, and never blocks it: the
// export creates nothing before that line is on disk.
func TestCleanEmptyOrTornMarker(t *testing.T) {
	root := copyFixture(t, killFixture(t))
	cfg, err := config.Load(filepath.Join(root, "carrel.toml"))
	if err != nil {
		t.Fatal(err)
	}
	markers := map[string]string{"empty": "", "torn": `{"format":"carrel pend`}
	for name, content := range markers {
		p := filepath.Join(cfg.Storage.DataDir, pendingPrefix+name+pendingSuffix)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	cleaned, err := Clean(ctx, Options{Config: cfg, Actor: "uid:0"})
	if err != nil || len(cleaned) != len(markers) {
		t.Fatalf("Clean with an empty and a torn marker = %+v, %v; want both cleaned", cleaned, err)
	}
	for _, c := range cleaned {
		if c.Err != nil || c.Outcome != "none" || len(c.Removed) != 0 {
			t.Errorf("Clean of an empty or torn marker = %+v; want outcome none, nothing removed", c)
		}
	}
	if left, err := pendingMarkers(cfg.Storage.DataDir); err != nil || len(left) != 0 {
		t.Errorf("markers after Clean = %q, %v; want none", left, err)
	}
}
