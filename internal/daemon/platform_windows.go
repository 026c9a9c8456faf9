package daemon

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// lockDataDir takes an exclusive lock on a file in the data folder so that
// two carrels never share one register. Windows releases it when the
// process dies.
func lockDataDir(path, folder string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("another carrel is already running on data folder %q", folder)
	}
	return func() { f.Close() }, nil
}

// restrictUmask: on Windows, files inherit the data folder's ACL.
func restrictUmask() {}
