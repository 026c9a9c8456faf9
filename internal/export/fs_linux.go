package export

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncBag makes every file and name under root durable with one syncfs(2)
// call: an export writes thousands of small files (audit entries and
// proofs), and an fsync per file would cost a journal commit each.
func syncBag(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// syncDir makes the names in a folder durable (the final rename).
func syncDir(dir string) error { return syncPath(dir, os.O_RDONLY) }

// Flags for opening what a bag holds (dirFS): never wait (a FIFO opened
// for reading would wait for a writer forever) and never follow a final
// symbolic link.
const (
	openFileFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOFOLLOW
	openDirFlags  = openFileFlags | syscall.O_DIRECTORY
)

// lockFile takes an exclusive lock on f without waiting; errLocked when
// another open file holds it. The kernel drops it when the process ends,
// however it ends.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// folderID identifies the folder at path (not following a link): its
// device and inode, which a rename keeps.
func folderID(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("no device and inode for %s", path)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

// openMarker opens a pending-export marker for reading and writing,
// creating it (never replacing one) when create is set.
func openMarker(path string, create bool) (*os.File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	return os.OpenFile(path, flag, 0o600)
}
