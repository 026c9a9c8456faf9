package testenv

import (
	"os"
	"syscall"
	"testing"
)

// LockFile takes an exclusive lock on path, creating it, and returns the
// function that releases it. Tests of several packages (and several
// `go test` processes) build a shared cache under such a lock, so one
// builds it while the others wait for it.
func LockFile(t testing.TB, path string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { f.Close() }
}
