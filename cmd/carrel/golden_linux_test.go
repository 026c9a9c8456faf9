package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenRun builds the real carrel binary, walks it through a day in
// the life of a PC — config, start, bookings, status, audit, stop — and
// compares the whole transcript, with times, hashes and paths masked,
// against testdata/e2e/golden.txt at the top of the repository. Run with
// -update after an intended change of output.
func TestGoldenRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "carrel")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "carrel.toml")
	var transcript bytes.Buffer
	run := func(args ...string) string {
		t.Helper()
		return exe(bin, &transcript, args...)
	}
	quiet := func(args ...string) string {
		t.Helper()
		var discard bytes.Buffer
		return exe(bin, &discard, args...)
	}
	doc := quiet("config", "init", "--data-dir", filepath.Join(dir, "data"))
	doc = strings.Replace(doc, `# id = "pc-01"`, `id = "pc-golden"`, 1)
	doc = strings.Replace(doc, `client_group = "carrel-booking"`, `client_group = ""`, 1)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	run("config", "check", cfg)
	run("status", "--config", cfg)

	svc := exec.Command(bin, "run", "--config", cfg)
	var log bytes.Buffer
	svc.Stdout, svc.Stderr = &log, &log
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer svc.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "data", "api.sock")); err == nil {
			break
		}
		if i > 500 {
			t.Fatalf("service did not start:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	run("booking", "start", "--config", cfg, "--ref", "golden-1", "--patron", "0012345678", "--planned-end", time.Now().Add(time.Hour).Format(time.RFC3339))
	run("booking", "start", "--config", cfg, "--ref", "golden-2")
	run("booking", "start", "--config", cfg, "--ref", "golden-2")
	run("booking", "end", "--config", cfg, "--ref", "golden-1")
	run("booking", "end", "--config", cfg, "--ref", "nope")
	run("booking", "list", "--config", cfg, "--format", "csv")
	run("status", "--config", cfg)
	svc.Process.Signal(syscall.SIGTERM)
	if err := svc.Wait(); err != nil {
		t.Fatalf("carrel run: %v\n%s", err, log.String())
	}
	run("audit", "list", "--config", cfg)
	run("audit", "verify", "--config", cfg)

	got := mask(transcript.String(), dir)
	path := filepath.Join("..", "..", "testdata", "e2e", "golden.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenRun -update)", err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s (rerun with -update if intended):\n%s", path, diff(string(want), got))
	}
}

// exe runs the binary and appends the command and its output to w.
func exe(bin string, w *bytes.Buffer, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		out = append(out, err.Error()...)
	}
	fmt.Fprintf(w, "$ carrel %s\n%s[exit %d]\n\n", strings.Join(args, " "), out, code)
	return string(out)
}

var masks = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<TIME>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{3,4}`), "<TIME>"},
	{regexp.MustCompile(`\b[0-9a-f]{12,}\b`), "<HEX>"},
	{regexp.MustCompile(`[A-Za-z0-9+/]{43}=`), "<HASH>"},
	{regexp.MustCompile(`pid=\d+`), "pid=<PID>"},
	// How long a booking lasted depends on how fast the machine ran the
	// script between its start and its end.
	{regexp.MustCompile(`at <TIME> \(\d+(\.\d+)?(ns|µs|ms|s|m|h)[0-9hms.]*\)`), "at <TIME> (<DURATION>)"},
	// The service signs a checkpoint a moment after the log grows; how many
	// it signed before the script reads the log depends on the machine's speed.
	{regexp.MustCompile(`\d+ covered by the latest signed checkpoint`), "<N> covered by the latest signed checkpoint"},
	{regexp.MustCompile(`\d+ checkpoints \(latest covers`), "<N> checkpoints (latest covers"},
	{regexp.MustCompile(`version=\S+`), "version=<VERSION>"},
	{regexp.MustCompile(`, version \S+`), ", version <VERSION>"},
	{regexp.MustCompile(` +`), " "}, // table column widths follow the masked values
}

func mask(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "<DIR>")
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.repl)
	}
	return s
}

// diff shows the first differing lines.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}
