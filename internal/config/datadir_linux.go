package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenDataDir judges the data folder at path — the folder, and every
// folder and link on the way to it as given and as resolved — and opens
// it. With create, missing folders are made (mode 0700) on the way, each
// relative to the one above it. It returns a *PermissionError when any of
// them another account could change, and wraps ErrNoDataDir when the
// folder does not exist and create is false.
func OpenDataDir(path string, create bool) (*DataDir, error) {
	w := &walker{self: selfID(), create: create}
	parent, leaf, err := w.walk(path, leafDir)
	var missing *errMissing
	switch {
	case errors.As(err, &missing):
		if len(w.problems) > 0 {
			return nil, permissionError(w.problems)
		}
		return nil, fmt.Errorf("data folder %q: %w", path, ErrNoDataDir)
	case errors.Is(err, errRefused):
		return nil, permissionError(w.problems)
	case err != nil:
		return nil, fmt.Errorf("opening data folder %q: %w", path, err)
	}
	defer unix.Close(leaf.fd)
	if parent.fd >= 0 {
		defer unix.Close(parent.fd)
	}
	if len(w.problems) > 0 {
		return nil, permissionError(w.problems)
	}
	// Open the folder for real (the walk holds O_PATH descriptors), relative
	// to its held parent, and make sure it is the one judged.
	var fd int
	if parent.fd >= 0 {
		fd, err = unix.Openat(parent.fd, filepath.Base(leaf.path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	} else {
		fd, err = unix.Open(leaf.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening data folder %q: %w", leaf.path, err)
	}
	var want, got unix.Stat_t
	err = unix.Fstat(leaf.fd, &want)
	if err == nil {
		err = unix.Fstat(fd, &got)
	}
	if err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("opening data folder %q: %s was replaced while it was opened", path, leaf.path)
	}
	if ps := judgeStat(leaf.path, &got, w.self, true); len(ps) > 0 {
		unix.Close(fd)
		return nil, permissionError(ps)
	}
	d := &DataDir{f: os.NewFile(uintptr(fd), leaf.path), name: leaf.path, path: leaf.path}
	// Files are opened through the descriptor when /proc shows it (it is
	// absent in some chroots); otherwise through the resolved folder,
	// whose every component only root and the service can change.
	pinned := "/proc/self/fd/" + strconv.Itoa(fd)
	var st unix.Stat_t
	if unix.Stat(pinned, &st) == nil && st.Dev == got.Dev && st.Ino == got.Ino {
		d.path = pinned
	}
	return d, nil
}

// CheckDataDir judges the data folder at path as OpenDataDir does, without
// creating or holding anything; a folder not created yet is judged by the
// folder that would hold it. For `carrel config check` and installers.
func CheckDataDir(path string) error {
	w := &walker{self: selfID()}
	return checkDir(w, path)
}

// CheckSocketDir judges the folder of the API's Unix socket. Other
// accounts must not be able to write it even when it is sticky (like
// /tmp): there they could create the socket's name first and keep the
// service from starting, or stand in for it. A folder not created yet is
// judged by the folder that would hold it, since carrel creates it there.
func CheckSocketDir(socket string) error {
	w := &walker{self: selfID()}
	err := checkDir(w, filepath.Dir(socket))
	var pe *PermissionError
	if errors.As(err, &pe) {
		for i, p := range pe.Problems {
			pe.Problems[i].Why += "; another account could take the API socket's name first"
			// A shared sticky folder (/tmp) is not to be fixed, but left.
			if fi, err := os.Lstat(p.Path); err == nil && fi.Mode()&os.ModeSticky != 0 {
				pe.Problems[i].Why += "; put the socket in a folder only root and the service can write, such as /run/carrel"
				pe.Problems[i].Fix = ""
			}
		}
	}
	return err
}

func checkDir(w *walker, path string) error {
	parent, leaf, err := w.walk(path, leafDir)
	var missing *errMissing
	switch {
	case errors.As(err, &missing), errors.Is(err, errRefused):
	case err != nil:
		return fmt.Errorf("checking %q: %w", path, err)
	default:
		unix.Close(leaf.fd)
		if parent.fd >= 0 {
			unix.Close(parent.fd)
		}
	}
	return permissionError(w.problems)
}
