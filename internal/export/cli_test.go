package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildCarrel builds the real carrel binary once per test run.
func buildCarrel(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "carrel")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/carrel-lib/carrel/cmd/carrel")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build carrel: %v\n%s", err, out)
	}
	return bin
}

// TestCLIEndToEnd runs the real binary on the standard fixture's data
// folder: `carrel export` with every flag, `carrel export verify` with the
// identity, then `carrel traffic list` shows the legal hold and `carrel
// traffic release --order` lifts it.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the carrel binary")
	}
	f := standard(t)
	bin := buildCarrel(t)
	carrel := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("carrel %s: exit %d; want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return string(out)
	}
	out := filepath.Join(f.root, "bundle")
	got := carrel(0, "export", "--config", f.cfgPath, "--order", "RET-2026-0042", "--court", "Retten i Testby",
		"--requester", "Testby Police", "--exporter", "Head Librarian", "--from", "2026-03-02T10:00:00Z",
		"--to", "2026-03-02T12:00:00Z", "--pc", "pc-01,pc-02", "--identity", f.identity, "--out", out)
	if !containsAll(got, "4 booking(s); 3 sealed segment(s) with 7 record(s) or packet(s) in the window",
		"on legal hold until `carrel traffic release --order RET-2026-0042`") {
		t.Errorf("carrel export:\n%s", got)
	}
	got = carrel(0, "export", "verify", out, "--identity", f.identity)
	if !containsAll(got, "3 sealed segment(s) match their segment.sealed entries", "exactly the sealed segments' content in the window") {
		t.Errorf("carrel export verify:\n%s", got)
	}
	if got := carrel(0, "traffic", "list", "--config", f.cfgPath); strings.Count(got, "RET-2026-0042") != 3 {
		t.Errorf("carrel traffic list: want 3 segments held by the order:\n%s", got)
	}
	if got := carrel(0, "traffic", "release", "--config", f.cfgPath, "--order", "RET-2026-0042"); !strings.Contains(got, "released the legal hold on 3 segment(s)") {
		t.Errorf("carrel traffic release:\n%s", got)
	}
	if got := carrel(0, "traffic", "list", "--config", f.cfgPath); strings.Contains(got, "RET-2026-0042") {
		t.Errorf("carrel traffic list after release still shows the order:\n%s", got)
	}
	// A second identity that did not seal the traffic: exit 1 with a hint.
	other := filepath.Join(f.root, "other.key")
	carrel(0, "keygen", "--out", other)
	got = carrel(1, "export", "--config", f.cfgPath, "--order", "RET-2026-0043", "--court", "C", "--requester", "P",
		"--exporter", "E", "--from", "2026-03-02T10:00:00Z", "--to", "2026-03-02T12:00:00Z", "--identity", other, "--out", out+"2")
	if !containsAll(got, "was sealed to other keys than the one in", "hint: give --identity the head librarian's key") {
		t.Errorf("carrel export with another key:\n%s", got)
	}
	carrel(1, "export", "verify", out, "--identity", other)
}
