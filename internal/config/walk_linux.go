package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The walker resolves a path the way the kernel does, one component at a
// time, but from descriptors it holds: each folder is opened relative to
// the one before (openat with O_NOFOLLOW), judged with fstat on that
// descriptor, and each link is read (readlinkat) and judged before it is
// followed. The folder that holds a link is judged like every other folder
// on the way, so a link that another account can replace is refused, and
// nothing is looked up by name twice: what was judged is what is used.

// maxLinks is the kernel's limit on links followed in one lookup (ELOOP).
const maxLinks = 40

// leafKind says what the last component must be.
type leafKind int

const (
	leafFile leafKind = iota // a regular file that must exist (the config)
	leafDir                  // a folder, created when missing if the walk may create
)

type walker struct {
	self     uint32
	create   bool // create missing folders (mode 0700) instead of stopping
	problems []PathProblem
	links    int
}

// node is an O_PATH descriptor of one resolved component, and its path.
type node struct {
	fd   int
	path string
}

// errMissing says the walk stopped at a component that does not exist;
// the folders above it were judged.
type errMissing struct{ path string }

func (e *errMissing) Error() string { return e.path + ": no such file or folder" }
func (e *errMissing) Unwrap() error { return fs.ErrNotExist }

// walk resolves p and returns descriptors of its leaf and of the leaf's
// folder (parent.fd is -1 when the leaf is "/"); the caller closes both.
// Problems of ownership and mode are collected in w.problems; the error
// says why the walk could not reach the leaf.
func (w *walker) walk(p string, kind leafKind) (parent, leaf node, err error) {
	// Not cleaned: ".." is taken as the kernel takes it, from the folder
	// reached so far (through a link, its target's parent).
	abs := p
	if !strings.HasPrefix(p, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return node{}, node{}, err
		}
		abs = wd + "/" + p
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return node{}, node{}, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	stack := []node{{root, "/"}}
	defer func() {
		// Keep only what is returned.
		for i, n := range stack {
			if err == nil && i >= len(stack)-2 {
				continue
			}
			unix.Close(n.fd)
		}
	}()
	if err := w.judgeFD(stack[0], false); err != nil {
		return node{}, node{}, err
	}
	if len(w.problems) > 0 {
		return node{}, node{}, errRefused
	}
	queue := components(abs)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		top := stack[len(stack)-1]
		if name == ".." {
			if len(stack) > 1 {
				unix.Close(top.fd)
				stack = stack[:len(stack)-1]
			}
			continue
		}
		full := filepath.Join(top.path, name)
		fd, err := unix.Openat(top.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			// What is missing may yet be created here, by carrel or by
			// someone else first: judge the folder that would hold it as
			// strictly as a leaf (no sticky exception).
			before := len(w.problems)
			if err := w.judgeFD(top, true); err != nil {
				return node{}, node{}, err
			}
			if !w.create || kind != leafDir || len(w.problems) > before {
				return node{}, node{}, &errMissing{full}
			}
			if err = unix.Mkdirat(top.fd, name, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = unix.Openat(top.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			return node{}, node{}, &fs.PathError{Op: "open", Path: full, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return node{}, node{}, &fs.PathError{Op: "stat", Path: full, Err: err}
		}
		// Nothing is looked up below a folder or through a link that
		// another account controls: the path is refused there, and what
		// lies beyond (a FUSE mount that never answers) is not touched.
		before := len(w.problems)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			w.problems = append(w.problems, judgeStat(full, &st, w.self, false)...)
			if len(w.problems) > before {
				unix.Close(fd)
				return node{}, node{}, errRefused
			}
			target, err := readlinkFD(fd)
			unix.Close(fd)
			if err != nil {
				return node{}, node{}, &fs.PathError{Op: "readlink", Path: full, Err: err}
			}
			if w.links++; w.links > maxLinks {
				w.problems = append(w.problems, PathProblem{Path: full, Why: "too many links (a loop?)"})
				return node{}, node{}, errRefused
			}
			if filepath.IsAbs(target) {
				for _, n := range stack[1:] {
					unix.Close(n.fd)
				}
				stack = stack[:1]
			}
			queue = append(components(target), queue...)
		case unix.S_IFDIR:
			w.problems = append(w.problems, judgeStat(full, &st, w.self, false)...)
			if len(w.problems) > before && len(queue) > 0 {
				unix.Close(fd)
				return node{}, node{}, errRefused
			}
			stack = append(stack, node{fd, full})
		default:
			if len(queue) > 0 {
				unix.Close(fd)
				w.problems = append(w.problems, PathProblem{Path: full, Why: "not a folder, but the path goes on below it"})
				return node{}, node{}, errRefused
			}
			stack = append(stack, node{fd, full})
		}
	}
	leaf = stack[len(stack)-1]
	if err := w.judgeFD(leaf, true); err != nil {
		return node{}, node{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(leaf.fd, &st); err != nil {
		return node{}, node{}, &fs.PathError{Op: "stat", Path: leaf.path, Err: err}
	}
	switch isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; {
	case kind == leafDir && !isDir:
		w.problems = append(w.problems, PathProblem{Path: leaf.path, Why: "not a folder"})
	case kind == leafFile && st.Mode&unix.S_IFMT != unix.S_IFREG:
		w.problems = append(w.problems, PathProblem{Path: leaf.path, Why: "not a regular file"})
	}
	if len(stack) == 1 {
		stack = append([]node{{-1, ""}}, stack...)
	}
	return stack[len(stack)-2], leaf, nil
}

// errRefused ends a walk that found a problem it cannot walk past; the
// problem is in w.problems.
var errRefused = errors.New("refused")

func (w *walker) judgeFD(n node, leaf bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(n.fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: n.path, Err: err}
	}
	w.problems = append(w.problems, judgeStat(n.path, &st, w.self, leaf)...)
	return nil
}

// components splits a path into the names the walk looks up; "." and
// empty names (from "//") are dropped, ".." is kept for the walk.
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func readlinkFD(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size > 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}

// judgeStat says what is unsafe about one entry. An entry is safe when it
// is owned by root or by the account running carrel and no one else can
// write it: no group or other write bit (on Linux a POSIX ACL that grants
// write shows as the group write bit, the ACL mask), except on a sticky
// folder above the leaf (like /tmp), where others may add entries but not
// replace ours. A link's own mode means nothing; its owner can remove it
// from a sticky folder, so it must be root's or the service's too.
func judgeStat(path string, st *unix.Stat_t, self uint32, leaf bool) []PathProblem {
	var ps []PathProblem
	typ := st.Mode & unix.S_IFMT
	if st.Uid != 0 && st.Uid != self {
		fix := fmt.Sprintf("chown root %s", shellQuote(path))
		if typ == unix.S_IFLNK {
			fix = fmt.Sprintf("chown -h root %s", shellQuote(path))
		}
		ps = append(ps, PathProblem{Path: path,
			Why: fmt.Sprintf("owned by uid %d, not root or the carrel service", st.Uid), Fix: fix})
	}
	if typ == unix.S_IFLNK {
		return ps
	}
	sticky := st.Mode&unix.S_ISVTX != 0 && typ == unix.S_IFDIR && !leaf
	if st.Mode&0o022 != 0 && !sticky {
		ps = append(ps, PathProblem{Path: path,
			Why: fmt.Sprintf("writable by group or others (mode %04o)", st.Mode&0o7777),
			Fix: fmt.Sprintf("chmod go-w %s", shellQuote(path))})
	}
	return ps
}

// shellQuote quotes a path for a fix hint, so that it can be pasted into a
// shell and cannot carry terminal escapes.
func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Sprintf("%q", s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func selfID() uint32 { return uint32(os.Geteuid()) }

// openConfig opens the config file for Inspect: the walk to it, then the
// file itself, opened for reading relative to its held folder and checked
// to be the very inode the walk judged. Only a regular file is opened, and
// without blocking, so a FIFO swapped in cannot hang the service.
func openConfig(path string) (*os.File, []PathProblem, error) {
	w := &walker{self: selfID()}
	parent, leaf, err := w.walk(path, leafFile)
	var missing *errMissing
	switch {
	case errors.As(err, &missing):
		return nil, nil, fmt.Errorf("reading config %q: %w", path, ErrNotFound)
	case errors.Is(err, errRefused):
		return nil, w.problems, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	defer unix.Close(leaf.fd)
	if parent.fd >= 0 {
		defer unix.Close(parent.fd)
	}
	var want unix.Stat_t
	if err := unix.Fstat(leaf.fd, &want); err != nil {
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	if want.Mode&unix.S_IFMT != unix.S_IFREG || parent.fd < 0 {
		return nil, w.problems, nil // "not a regular file" is among the problems
	}
	if want.Uid != 0 && want.Uid != w.self {
		return nil, w.problems, nil // another account's file: refused unread
	}
	fd, err := unix.Openat(parent.fd, filepath.Base(leaf.path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config %q: %w", path, &fs.PathError{Op: "open", Path: leaf.path, Err: err})
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		// Only root or the service can replace a file in a folder that
		// passed the walk; in one that did not, the refusal stands anyway.
		unix.Close(fd)
		if len(w.problems) > 0 {
			return nil, w.problems, nil
		}
		return nil, nil, fmt.Errorf("reading config %q: %s was replaced while it was opened", path, leaf.path)
	}
	// Judge the open file itself once more: its mode may have changed
	// between the walk and the open.
	w.problems = append(w.problems, judgeStat(leaf.path, &got, w.self, true)...)
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	return os.NewFile(uintptr(fd), leaf.path), w.problems, nil
}
