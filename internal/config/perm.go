package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PermissionError says which paths other accounts could write, and how to
// fix each. carrel refuses to start (or to load a new config) while there is
// one, because whoever can write the config can declare a misuse case, and
// whoever can write the data folder can forge bookings or delete evidence.
type PermissionError struct {
	Problems []PathProblem
}

// PathProblem is one unsafe path.
type PathProblem struct {
	Path string
	Why  string
	Fix  string // a command that fixes it
}

func (e *PermissionError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", p.Path, p.Why)
	}
	return "unsafe permissions: " + b.String()
}

// Hint is printed under the error by the CLI.
func (e *PermissionError) Hint() string {
	fixes := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.Fix != "" {
			fixes = append(fixes, p.Fix)
		}
	}
	return "fix with: " + strings.Join(fixes, " && ")
}

// CheckPermissions checks the config file and the data folder (and the
// folders above them) against writes by other accounts. The data folder
// need not exist yet; then its nearest existing parent is checked.
func CheckPermissions(configPath, dataDir string) error {
	var ps []PathProblem
	ps = append(ps, checkPath(configPath, false)...)
	ps = append(ps, checkPath(dataDir, true)...)
	if len(ps) == 0 {
		return nil
	}
	return &PermissionError{Problems: dedupe(ps)}
}

func dedupe(ps []PathProblem) []PathProblem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if seen[p.Path+p.Why] {
			continue
		}
		seen[p.Path+p.Why] = true
		out = append(out, p)
	}
	return out
}

// walkPath resolves p (following links: what matters is what is read) and
// visits it and every existing folder above it, leaf first, until the root
// or until stop says the folder above need not be judged. Folders not
// created yet (the data folder before first start) are passed over. The
// leaf must be a folder when isDir, a regular file otherwise.
func walkPath(p string, isDir bool, visit func(path string, fi fs.FileInfo, leaf bool) []PathProblem, stop func(parent string) bool) []PathProblem {
	abs, err := filepath.Abs(p)
	if err != nil {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if !errors.Is(err, fs.ErrNotExist) {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	var ps []PathProblem
	leaf := true
	for cur := abs; ; {
		fi, err := os.Stat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			ps = append(ps, PathProblem{Path: cur, Why: err.Error()})
		default:
			ps = append(ps, visit(cur, fi, leaf)...)
			if leaf && isDir && !fi.IsDir() {
				ps = append(ps, PathProblem{Path: cur, Why: "not a folder"})
			}
			if leaf && !isDir && !fi.Mode().IsRegular() {
				ps = append(ps, PathProblem{Path: cur, Why: "not a regular file"})
			}
			leaf = false
		}
		parent := filepath.Dir(cur)
		if parent == cur || stop(parent) {
			return ps
		}
		cur = parent
	}
}
