package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkPath on Windows checks the owner and DACL of p, and of the folders
// above it up to %ProgramData%, against writes by accounts other than
// SYSTEM, Administrators and the account running carrel. Like the Linux
// check it follows links and checks that the leaf is a file or a folder.
func checkPath(p string, isDir bool) []PathProblem {
	abs, err := filepath.Abs(p)
	if err != nil {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	// Follow symbolic links and junctions: what matters is what is read.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if !errors.Is(err, fs.ErrNotExist) {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	self := selfSID()
	stop := filepath.Clean(os.Getenv("ProgramData"))
	var ps []PathProblem
	leaf := true
	for cur := abs; ; {
		parent := filepath.Dir(cur)
		if parent == cur {
			// The drive root lets Users create folders by default; what
			// matters is that our folders do not inherit that.
			break
		}
		fi, err := os.Stat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not created yet (the data folder before first start).
		case err != nil:
			ps = append(ps, PathProblem{Path: cur, Why: err.Error()})
		default:
			ps = append(ps, aclOf(cur, self)...)
			if leaf && isDir && !fi.IsDir() {
				ps = append(ps, PathProblem{Path: cur, Why: "not a folder"})
			}
			if leaf && !isDir && !fi.Mode().IsRegular() {
				ps = append(ps, PathProblem{Path: cur, Why: "not a regular file"})
			}
			leaf = false
		}
		// ProgramData itself grants Users write by default; carrel's own
		// folder is created without inheritance, so stop below it.
		// Windows paths compare without regard to case.
		if strings.EqualFold(filepath.Clean(parent), stop) {
			break
		}
		cur = parent
	}
	return ps
}

func aclOf(path, self string) []PathProblem {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return []PathProblem{{Path: path, Why: "cannot read its owner: " + err.Error()}}
	}
	dacl, _, err := sd.DACL()
	if err != nil && !errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) {
		return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
	}
	if dacl == nil {
		return JudgeACL(path, owner.String(), true, nil, self)
	}
	var aces []ACE
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var h *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &h); err != nil {
			return []PathProblem{{Path: path, Why: "cannot read its access list: " + err.Error()}}
		}
		// Plain allow and deny entries share this layout; for the others
		// the SID sits elsewhere, and NewACE does not read it.
		var sidStr, account string
		if t := h.Header.AceType; t == windows.ACCESS_ALLOWED_ACE_TYPE || t == windows.ACCESS_DENIED_ACE_TYPE {
			sid := (*windows.SID)(unsafe.Pointer(&h.SidStart))
			sidStr = sid.String()
			if acct, dom, _, err := sid.LookupAccount(""); err == nil {
				account = dom + `\` + acct
			}
		}
		aces = append(aces, NewACE(h.Header.AceType, h.Header.AceFlags, uint32(h.Mask), sidStr, account))
	}
	return JudgeACL(path, owner.String(), false, aces, self)
}

func selfSID() string {
	tok := windows.GetCurrentProcessToken()
	u, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	return u.User.Sid.String()
}
