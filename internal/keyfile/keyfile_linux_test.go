package keyfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/keyfile"
)

// TestLeftovers: a temporary file a crash left is removed by the next
// Create; one that another process still writes (holds locked) is not;
// files that merely look alike are never touched.
func TestLeftovers(t *testing.T) {
	dir := t.TempDir()
	abandoned := filepath.Join(dir, ".k.0123456789abcdef.tmp")
	held := filepath.Join(dir, ".k.fedcba9876543210.tmp")
	lookalikes := []string{".k.0123.tmp", ".k.0123456789abcdeg.tmp", ".other.0123456789abcdef.tmp", "k.0123456789abcdef.tmp"}
	for _, n := range append([]string{abandoned, held}, lookalikes...) {
		if !filepath.IsAbs(n) {
			n = filepath.Join(dir, n)
		}
		if err := os.WriteFile(n, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Create(filepath.Join(dir, "k"), []byte("key"), ""); err != nil {
		t.Fatal(err)
	}
	want := append([]string{".k.fedcba9876543210.tmp", "k"}, lookalikes...)
	slices.Sort(want)
	if n := names(t, dir); !slices.Equal(n, want) {
		t.Errorf("folder after Create() = %q; want %q", n, want)
	}
}
