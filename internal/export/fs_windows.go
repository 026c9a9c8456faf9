package export

import (
	"os"
	"path/filepath"
)

// syncBag flushes every file under root (FlushFileBuffers). Folders need
// nothing: NTFS journals its metadata, so names are durable once written.
func syncBag(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return syncPath(p, os.O_RDWR)
	})
}

// syncDir is a no-op on Windows: there is no folder fsync.
func syncDir(string) error { return nil }
