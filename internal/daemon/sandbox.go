package daemon

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/carrel-lib/carrel/internal/svc"
)

// underSystemd reports whether the service runs as a systemd unit, which
// sets INVOCATION_ID for every process it starts.
func underSystemd() bool { return os.Getenv("INVOCATION_ID") != "" }

// sandboxHint adds to a start-up error, when the service runs under
// systemd and could not create or write its data folder dir because the
// file system is read-only there (the unit's ProtectSystem=strict) or
// access is denied (ProtectHome=), the drop-in that lets the unit write
// the folder: without it the service fails at every restart. Only errors
// whose message names about (a path in the data folder; "" for any) are
// taken to be the folder's.
func sandboxHint(err error, dir, about string) error {
	if err == nil || !underSystemd() || !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EACCES) ||
		!strings.Contains(err.Error(), about) {
		return err
	}
	_, serr := os.Stat(dir)
	return &hintError{err: err, hint: svc.DataDirHint(dir, serr == nil)}
}

// hintError is an error with a line saying what to do; `carrel run`
// prints it as "hint: …".
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
