package keyfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/carrel-lib/carrel/internal/keyfile"
	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
)

// childContent is what the killed child writes.
var childContent = bytes.Repeat([]byte("k"), 4096)

func TestMain(m *testing.M) {
	keyfiletest.Child(func(path string) error { return keyfile.Create(path, childContent, "") })
	os.Exit(m.Run())
}

// names lists the folder, for checking that no temporary file is left.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := keyfile.Create(p, []byte("secret\n"), ""); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "secret\n" {
		t.Errorf("Create() wrote %q, %v; want %q", got, err, "secret\n")
	}
	if fi, err := os.Stat(p); err != nil || runtime.GOOS == "linux" && fi.Mode() != 0o600 {
		t.Errorf("Create() made mode %v, %v; want 0600", fi.Mode(), err)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"k"}) {
		t.Errorf("folder after Create() = %q; want only k", n)
	}
}

// TestCreateNeverReplaces: whatever stands at the name — a file, an empty
// file, a folder, a symlink to a file elsewhere or a dangling one — stays
// as it was, nothing is written through a link, and the error says the
// name exists.
func TestCreateNeverReplaces(t *testing.T) {
	for _, kind := range []string{"file", "empty file", "folder", "symlink", "dangling symlink"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "k")
			elsewhere := filepath.Join(t.TempDir(), "target")
			var err error
			switch kind {
			case "file":
				err = os.WriteFile(p, []byte("old"), 0o600)
			case "empty file":
				err = os.WriteFile(p, nil, 0o600)
			case "folder":
				err = os.Mkdir(p, 0o700)
			case "symlink":
				if err = os.WriteFile(elsewhere, []byte("old"), 0o600); err == nil {
					err = os.Symlink(elsewhere, p)
				}
			case "dangling symlink":
				err = os.Symlink(elsewhere, p)
			}
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(p)
			err = keyfile.Create(p, []byte("new"), "")
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create() over a %s = %v; want fs.ErrExist", kind, err)
			}
			after, _ := os.Lstat(p)
			if !os.SameFile(before, after) || before.Size() != after.Size() {
				t.Errorf("Create() over a %s changed it", kind)
			}
			if b, err := os.ReadFile(elsewhere); kind == "symlink" && string(b) != "old" ||
				kind == "dangling symlink" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Create() over a %s wrote through it: %q, %v", kind, b, err)
			}
			if n := names(t, dir); !slices.Equal(n, []string{"k"}) {
				t.Errorf("folder after a refused Create() = %q; want only k", n)
			}
		})
	}
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "marker")
	for _, content := range []string{"1\n", "22\n"} {
		if err := keyfile.Replace(p, []byte(content), ""); err != nil {
			t.Fatalf("Replace(%q) = %v", content, err)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Errorf("after Replace(%q) the file holds %q", content, got)
		}
	}
	if n := names(t, dir); !slices.Equal(n, []string{"marker"}) {
		t.Errorf("folder after Replace() = %q; want only marker", n)
	}
}

// TestKilledAtEachStep kills a real child process (SIGKILL) at each step
// of Create, as it reports reaching it: the file is then absent or whole,
// never empty or partial, and the next Create either makes it or finds
// the whole one, and removes the temporary file the kill left.
func TestKilledAtEachStep(t *testing.T) {
	for _, step := range keyfiletest.Steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "k")
			keyfiletest.KillAt(t, step, p)
			got, err := os.ReadFile(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if step == "named" || step == "done" {
					t.Errorf("killed at %q: no file; want it named already", step)
				}
				if err := keyfile.Create(p, childContent, ""); err != nil {
					t.Fatalf("Create() after a kill at %q = %v", step, err)
				}
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, childContent):
				t.Fatalf("killed at %q: the file holds %d bytes, not the whole %d", step, len(got), len(childContent))
			default:
				if err := keyfile.Create(p, []byte("other"), ""); !errors.Is(err, fs.ErrExist) {
					t.Fatalf("Create() after a kill at %q left the whole file = %v; want fs.ErrExist", step, err)
				}
			}
			if n := names(t, dir); !slices.Equal(n, []string{"k"}) {
				t.Errorf("folder after a kill at %q and a second Create() = %q; want only k", step, n)
			}
		})
	}
}

// TestConcurrentCreate: many writers creating one file at once end with
// exactly one winner, whose content the file holds whole; the others are
// told it exists, and none of them removes another's file in the making.
func TestConcurrentCreate(t *testing.T) {
	const writers, rounds = 8, 50
	for round := range rounds {
		dir := t.TempDir()
		p := filepath.Join(dir, "k")
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() { errs[i] = keyfile.Create(p, fmt.Appendf(nil, "writer %d", i), "") })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both created the file", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, fs.ErrExist):
				t.Fatalf("round %d: writer %d: %v; want success or fs.ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created the file", round)
		}
		if got, _ := os.ReadFile(p); string(got) != fmt.Sprintf("writer %d", winner) {
			t.Fatalf("round %d: the file holds %q; want the winner's (writer %d)", round, got, winner)
		}
		if n := names(t, dir); !slices.Equal(n, []string{"k"}) {
			t.Fatalf("round %d: folder = %q; want only k", round, n)
		}
	}
}
