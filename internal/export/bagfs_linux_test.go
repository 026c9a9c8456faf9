package export

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestVerifyRefusesSpecialFiles puts a FIFO, a device, a symbolic link
// (inside the bag and out of it) and a folder in the place of each kind of
// file a bag holds, and checks that Verify refuses each promptly, naming
// the file and what it is, without opening it for reading: a FIFO at
// bagit.txt made `carrel export verify` wait forever for a writer (issue
// 10, item 12). The deadline only stops a test that would hang.
func TestVerifyRefusesSpecialFiles(t *testing.T) {
	positions := []string{"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
		bookingsCSV, checkpointFile, sigEntryFile}
	kinds := []struct {
		name string
		make func(t *testing.T, dir, path string)
		want string
	}{
		{"fifo", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is a named pipe (FIFO), not a regular file"},
		{"device", func(t *testing.T, dir, path string) {
			testenv.NeedRoot(t)
			if err := syscall.Mknod(path, syscall.S_IFCHR|0o600, int(unix.Mkdev(1, 5))); err != nil { // /dev/zero
				t.Fatal(err)
			}
		}, "is a device, not a regular file"},
		{"link inside the bag", func(t *testing.T, dir, path string) {
			target, err := filepath.Rel(filepath.Dir(path), filepath.Join(dir, "data", "custody.json"))
			if err == nil {
				err = os.Symlink(target, path)
			}
			if err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link, not a regular file"},
		{"link out of the bag", func(t *testing.T, dir, path string) {
			if err := os.Symlink("/etc/passwd", path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link, not a regular file"},
		{"folder", func(t *testing.T, dir, path string) {
			if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, k := range kinds {
		for _, pos := range positions {
			t.Run(k.name+"/"+pos, func(t *testing.T) {
				dir, _ := bundle(t)
				path := filepath.Join(dir, filepath.FromSlash(pos))
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				k.make(t, dir, path)
				done := make(chan error, 1)
				go func() {
					_, err := VerifyDir(dir, VerifyOptions{})
					done <- err
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(time.Minute):
					t.Fatalf("VerifyDir with a %s at %s has not returned after a minute", k.name, pos)
				}
				if err == nil || !errors.Is(err, ErrBadBag) || !strings.Contains(err.Error(), pos) || !strings.Contains(err.Error(), k.want) {
					t.Errorf("VerifyDir with a %s at %s = %v; want it refused naming %s (%q)", k.name, pos, err, pos, k.want)
				}
			})
		}
	}
}
