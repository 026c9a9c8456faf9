package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
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

// Flags for opening what a bag holds (dirFS). Windows has no FIFOs or
// devices in a folder; links are refused by dirFS before it opens.
const (
	openFileFlags = os.O_RDONLY
	openDirFlags  = os.O_RDONLY
)

// lockFile takes an exclusive lock on f without waiting; errLocked when
// another handle holds it. Windows drops it when the process ends.
func lockFile(f *os.File) error {
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY,
		0, 1, 0, new(windows.Overlapped))
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}

// folderID identifies the folder at path (not following a reparse
// point): its volume serial number and file index, which a rename keeps.
func folderID(path string) (string, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return "", err
	}
	h, err := windows.CreateFile(p, 0, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return "", fmt.Errorf("identifying %s: %w", path, err)
	}
	return fmt.Sprintf("%08x:%08x%08x", info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow), nil
}

// openMarker opens a pending-export marker for reading and writing,
// creating it (never replacing one) when create is set. Unlike
// os.OpenFile it lets the file be deleted while open (FILE_SHARE_DELETE):
// pending.done removes the marker while it still holds it locked, and
// Windows refuses to delete a file that any handle opened without that
// share mode (ERROR_SHARING_VIOLATION), which failed every export.
func openMarker(path string, create bool) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	disposition := uint32(windows.OPEN_EXISTING)
	if create {
		disposition = windows.CREATE_NEW
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		disposition, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}
