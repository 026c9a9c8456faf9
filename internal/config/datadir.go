package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// DataDir is carrel's data folder, judged and opened once. Every file in
// it is opened through Path, which names the folder that was judged — on
// Linux the held descriptor itself (/proc/self/fd/N), so that re-pointing
// a link, or renaming the folder or one above it, cannot move carrel's
// files elsewhere while it runs; on Windows the resolved folder, held open
// without FILE_SHARE_DELETE so that it cannot be renamed or replaced.
type DataDir struct {
	f    *os.File
	name string // the folder as resolved, for messages
	path string // the prefix files in the folder are opened with
}

// Path is the prefix to open files in the folder with.
func (d *DataDir) Path() string { return d.path }

// Name is the folder as it was resolved when opened, for messages.
func (d *DataDir) Name() string { return d.name }

// Join returns the path to open name in the folder with.
func (d *DataDir) Join(name string) string { return filepath.Join(d.path, name) }

// Close releases the folder.
func (d *DataDir) Close() error { return d.f.Close() }

// Named returns err with the folder's real name in its message in place of
// Path (errors.Is and errors.As still see err), so that no message names
// /proc/self/fd/N.
func (d *DataDir) Named(err error) error {
	if err == nil || d.path == d.name || !strings.Contains(err.Error(), d.path) {
		return err
	}
	return &namedError{msg: d.Rename(err.Error()), err: err}
}

// Rename replaces Path by the folder's real name in s.
func (d *DataDir) Rename(s string) string {
	if d.path == d.name {
		return s
	}
	return strings.ReplaceAll(s, d.path, d.name)
}

type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// ErrNoDataDir is returned (wrapped) by OpenDataDir when the folder does
// not exist and was not to be created.
var ErrNoDataDir = errors.New("data folder does not exist")
