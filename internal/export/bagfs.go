package export

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"unicode/utf8"
)

// dirFS is a bag folder as an fs.FS that never blocks and never follows a
// link: Open looks at the name first (Lstat) and opens only folders and
// regular files, without waiting (a FIFO opened for reading waits for a
// writer forever) and without following a final link, and then checks
// that what it opened is what it looked at. Anything else is refused
// unopened. Names are resolved inside the bag only (os.Root).
type dirFS struct{ root *os.Root }

func (d dirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fi, err := d.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	flags := openFileFlags
	switch {
	case fi.IsDir():
		flags = openDirFlags
	case !fi.Mode().IsRegular():
		return nil, &fs.PathError{Op: "open", Path: name, Err: notRegular(fi.Mode())}
	}
	f, err := d.root.OpenFile(name, flags, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && (st.Mode().Type() != fi.Mode().Type() || !os.SameFile(fi, st)) {
		err = &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("changed while it was being opened")}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// notRegular says what a file that is not a regular file is.
func notRegular(m fs.FileMode) error {
	what := "a special file"
	switch t := m.Type(); {
	case t&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case t&fs.ModeDevice != 0:
		what = "a device"
	case t&fs.ModeSocket != 0:
		what = "a socket"
	case t&fs.ModeDir != 0:
		what = "a folder"
	}
	return fmt.Errorf("is %s, not a regular file: a bag holds only files and folders", what)
}

// openRegular opens name in fsys and refuses anything but a regular file.
// With dirFS nothing else is even opened; other file systems (tests) are
// checked after the open.
func openRegular(fsys fs.FS, name string) (fs.File, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = notRegular(st.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// displayName returns a name from outside input (a file in a bag, a value
// in it) as it is when it holds nothing but printable characters other
// than spaces, quotes and backslashes, and quoted (strconv.Quote: control
// characters, invalid UTF-8 and format characters escaped) otherwise, so
// that a name can neither paint the terminal nor pass for other output.
func displayName(s string) string {
	if s == "" || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r == ' ' || r == '"' || r == '\\' || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
