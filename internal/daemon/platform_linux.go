package daemon

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDataDir takes an exclusive lock on a file in the data folder so that
// two carrels (a service and a forgotten `carrel run`) never share one
// register. The kernel drops the lock when the process dies, so a crash
// never leaves it stuck.
func lockDataDir(path, folder string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another carrel is already running on data folder %q", folder)
	}
	return func() { f.Close() }, nil
}

// restrictUmask makes every file the daemon creates (databases, keys,
// segments) private to its owner, also when run by hand rather than by the
// unit, which sets UMask=0077 itself.
func restrictUmask() { unix.Umask(0o077) }
