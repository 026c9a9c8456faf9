package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// temp is a temporary file being written, held locked (flock) until it
// has its name: removeLeftovers takes only files nobody holds.
type temp struct {
	f    *os.File
	path string
}

func createTemp(dir, base, _ string) (*temp, error) {
	for range 16 {
		name, err := tempName(base)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: p, Err: err}
		}
		f := os.NewFile(uintptr(fd), p)
		var st unix.Stat_t
		err = unix.Flock(fd, unix.LOCK_EX)
		if err == nil {
			// The umask can only take bits away, but say it outright.
			err = unix.Fchmod(fd, 0o600)
		}
		if err == nil {
			err = unix.Fstat(fd, &st)
		}
		if err != nil {
			f.Close()
			os.Remove(p)
			return nil, &fs.PathError{Op: "lock", Path: p, Err: err}
		}
		if st.Nlink == 0 {
			// Another process's removeLeftovers took it in the moment
			// before the lock: make another.
			f.Close()
			continue
		}
		return &temp{f: f, path: p}, nil
	}
	return nil, fmt.Errorf("no free temporary name for %s in %s", base, dir)
}

// name gives the synced temporary file the name path: with replace by a
// rename, else by a rename that refuses an existing name
// (RENAME_NOREPLACE), or on a file system without it by a hard link, which
// refuses one too. It closes the file.
func (t *temp) name(path string, replace bool) error {
	defer t.f.Close()
	if replace {
		if err := os.Rename(t.path, path); err != nil {
			return err
		}
		return nil
	}
	err := unix.Renameat2(unix.AT_FDCWD, t.path, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		if err := os.Link(t.path, path); err != nil {
			return err
		}
		// The file now has its name; the temporary one is a second name
		// for it, which a crash here would leave for removeLeftovers.
		os.Remove(t.path)
		return nil
	default:
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
}

// discard removes a temporary file that never got its name.
func (t *temp) discard() {
	os.Remove(t.path)
	t.f.Close()
}

// removeIfAbandoned removes the temporary file at p unless another
// process holds it (it is still writing it).
func removeIfAbandoned(p string) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	// Remove what was judged, not whatever now stands at p.
	var held, named unix.Stat_t
	if unix.Fstat(fd, &held) != nil || unix.Lstat(p, &named) != nil || held.Dev != named.Dev || held.Ino != named.Ino {
		return
	}
	unix.Unlink(p)
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
