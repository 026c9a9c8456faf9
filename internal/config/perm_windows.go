package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkPath on Windows checks the owner and DACL of p, and of the folders
// above it, against writes by accounts other than SYSTEM, Administrators
// and the account running carrel.
func checkPath(p string, isDir bool) []PathProblem {
	abs, err := filepath.Abs(p)
	if err != nil {
		return []PathProblem{{Path: p, Why: err.Error()}}
	}
	self := selfSID()
	stop := filepath.Clean(os.Getenv("ProgramData"))
	var ps []PathProblem
	for cur := abs; ; {
		parent := filepath.Dir(cur)
		if parent == cur {
			// The drive root lets Users create folders by default; what
			// matters is that our folders do not inherit that.
			break
		}
		if _, err := os.Stat(cur); err == nil {
			ps = append(ps, aclOf(cur, self)...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			ps = append(ps, PathProblem{Path: cur, Why: err.Error()})
		}
		// ProgramData itself grants Users write by default; carrel's own
		// folder is created without inheritance, so stop below it.
		if filepath.Clean(parent) == stop {
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
		sid := (*windows.SID)(unsafe.Pointer(&h.SidStart))
		a := ACE{
			SID:     sid.String(),
			Allow:   h.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE,
			Mask:    uint32(h.Mask),
			Inherit: h.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0,
		}
		if acct, dom, _, err := sid.LookupAccount(""); err == nil {
			a.Account = dom + `\` + acct
		}
		aces = append(aces, a)
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
