// Package testenv lets tests ask for what they need from the machine: root,
// network namespaces, Debian tools; and it holds the small helpers that
// the tests of several packages share. Under `make test` (which sets
// CARREL_TEST_PRIVILEGED=1 and installs the tools) a missing need fails the
// test, so CI can never pass by skipping; in a developer's plain `go test`
// it skips with the reason.
//
// It is imported only by tests.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Privileged reports whether the run promised root and the Debian tools.
func Privileged() bool { return os.Getenv("CARREL_TEST_PRIVILEGED") == "1" }

// Long reports whether the longer sweeps were asked for (make test-long).
func Long() bool { return os.Getenv("CARREL_TEST_LONG") == "1" }

// NeedRoot fails or skips t unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	missing(t, "root (run `make test` as root)")
}

// NeedTool fails or skips t unless every named program is on PATH, and
// returns the path of the first.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing(t, "the program "+n+" (`make deps` installs it)")
			return ""
		}
		if first == "" {
			first = p
		}
	}
	return first
}

func missing(t testing.TB, what string) {
	t.Helper()
	if Privileged() {
		t.Fatalf("this test needs %s, and CARREL_TEST_PRIVILEGED=1 says it must run", what)
	}
	t.Skipf("needs %s; set CARREL_TEST_PRIVILEGED=1 (make test does) to require it", what)
}

// RepoRoot returns the folder holding carrel's go.mod, for tests that
// build carrel or keep tools in its build folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// CacheDir returns a folder, created if missing, where tests keep what is
// slow to make and safe to reuse between runs (a debootstrapped Debian root,
// an initialised Wine prefix): $CARREL_TEST_CACHE/name, else
// carrel-test/name under the user's cache folder (~/.cache). It lies
// outside the repository on purpose: a tree of someone else's files under
// the module makes every `go list ./...`, `go vet ./...` and `go test ./...`
// walk it, and fail when a test is still writing it.
func CacheDir(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("CARREL_TEST_CACHE")
	if base == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no folder for the test cache (set CARREL_TEST_CACHE): %v", err)
		}
		base = filepath.Join(dir, "carrel-test")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating the test cache: %v", err)
	}
	return dir
}

// Buffer collects output that a test reads while a process or goroutine
// still writes it: a bytes.Buffer behind a lock. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// RunWithWorkDir runs the package's tests (from TestMain) with *dir set to
// a new temporary folder named after pattern, for what the tests build
// once and share (binaries, packages), and removes it afterwards. It
// returns the exit code for os.Exit.
func RunWithWorkDir(m *testing.M, pattern string, dir *string) int {
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dir = d
	defer os.RemoveAll(d)
	return m.Run()
}
