package config

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPath checks p and every folder above it. A path is safe when it is
// owned by root or by the account running carrel and no one else can write
// it: no group or other write bit, except on a sticky folder (like /tmp),
// where others may add files but not replace ours.
func checkPath(p string, isDir bool) []PathProblem {
	self := uint32(os.Geteuid())
	return walkPath(p, isDir, func(path string, fi fs.FileInfo, leaf bool) []PathProblem {
		return judge(path, fi, self, leaf)
	}, func(string) bool { return false })
}

func judge(path string, fi fs.FileInfo, self uint32, leaf bool) []PathProblem {
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
	return ps
}
