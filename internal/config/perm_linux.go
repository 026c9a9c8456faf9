package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkPath checks p and every folder above it. A path is safe when it is
// owned by root or by the account running carrel and no one else can write
// it: no group or other write bit, except on a sticky folder (like /tmp),
// where others may add files but not replace ours.
func checkPath(p string, isDir bool) []PathProblem {
	abs, err := filepath.Abs(p)
	if err != nil {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	// Follow symbolic links: what matters is the file that is read.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if !errors.Is(err, fs.ErrNotExist) {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	self := uint32(os.Geteuid())
	var ps []PathProblem
	leaf := true
	for cur := abs; ; cur = filepath.Dir(cur) {
		fi, err := os.Stat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not created yet (the data folder before first start).
		case err != nil:
			ps = append(ps, PathProblem{Path: cur, Why: err.Error()})
		default:
			ps = append(ps, judge(cur, fi, self, leaf, isDir)...)
			leaf = false
		}
		if cur == filepath.Dir(cur) {
			break
		}
	}
	return ps
}

func judge(path string, fi fs.FileInfo, self uint32, leaf, wantDir bool) []PathProblem {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return []PathProblem{{Path: path, Why: "cannot read owner"}}
	}
	var ps []PathProblem
	mode := fi.Mode()
	if st.Uid != 0 && st.Uid != self {
		ps = append(ps, PathProblem{Path: path,
			Why: fmt.Sprintf("owned by uid %d, not root or the carrel service", st.Uid),
			Fix: fmt.Sprintf("chown root %s", path)})
	}
	sticky := mode&fs.ModeSticky != 0 && mode.IsDir() && !leaf
	if mode.Perm()&0o022 != 0 && !sticky {
		ps = append(ps, PathProblem{Path: path,
			Why: fmt.Sprintf("writable by group or others (mode %04o)", mode.Perm()),
			Fix: fmt.Sprintf("chmod go-w %s", path)})
	}
	if leaf && !wantDir && !mode.IsRegular() {
		ps = append(ps, PathProblem{Path: path, Why: "not a regular file"})
	}
	if leaf && wantDir && !mode.IsDir() {
		ps = append(ps, PathProblem{Path: path, Why: "not a folder"})
	}
	return ps
}
