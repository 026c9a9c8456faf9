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
	self := selfSID()
	programData := filepath.Clean(os.Getenv("ProgramData"))
	return walkPath(p, isDir, func(path string, _ fs.FileInfo, _ bool) []PathProblem {
		return aclOf(path, self)
	}, func(parent string) bool {
		// The drive root and ProgramData itself let Users create folders
		// by default; carrel's own folders are created without
		// inheritance, so the walk stops below them. Windows paths compare
		// without regard to case.
		return filepath.Dir(parent) == parent || strings.EqualFold(filepath.Clean(parent), programData)
	})
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
