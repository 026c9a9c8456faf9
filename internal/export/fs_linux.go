package export

import (
	"os"

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
