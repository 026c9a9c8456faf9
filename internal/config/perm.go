package config

import (
	"fmt"
	"strings"
)

// PermissionError says which paths other accounts could write (or could
// replace, through a link or a folder they can write), and how to fix
// each. carrel refuses to start (or to load a new config) while there is
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

// String is the problem as printed: the path (quoted when it holds
// control characters) and why it is unsafe.
func (p PathProblem) String() string { return quoteName(p.Path) + ": " + p.Why }

func (e *PermissionError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
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
	if len(fixes) == 0 {
		return ""
	}
	return "fix with: " + strings.Join(fixes, " && ")
}

func dedupe(ps []PathProblem) []PathProblem {
	seen := map[string]bool{}
	out := make([]PathProblem, 0, len(ps))
	for _, p := range ps {
		if seen[p.Path+"\x00"+p.Why] {
			continue
		}
		seen[p.Path+"\x00"+p.Why] = true
		out = append(out, p)
	}
	return out
}

func permissionError(ps []PathProblem) error {
	if len(ps) == 0 {
		return nil
	}
	return &PermissionError{Problems: dedupe(ps)}
}

// quoteName returns a path as it may be printed: as it is when it holds
// only printable characters, quoted otherwise, so that a file name cannot
// carry terminal escapes into a message.
func quoteName(p string) string {
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Sprintf("%q", p)
		}
	}
	return p
}
