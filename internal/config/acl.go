package config

import (
	"fmt"
	"strings"
)

// ACE is one access-control entry of a Windows DACL, reduced to what the
// permission check needs. The judging logic lives here, away from the
// Windows API calls, so it is tested on every platform.
type ACE struct {
	SID     string // string form, e.g. S-1-5-32-544
	Account string // for messages, e.g. BUILTIN\Users
	Allow   bool
	Mask    uint32
	Inherit bool // applies only to children (INHERIT_ONLY_ACE)
}

// Well-known SIDs that may write carrel's files.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidTrustedInstall = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
	sidCreatorOwner   = "S-1-3-0"
)

// Access rights that let an account change a file or folder, or its ACL.
const (
	fileWriteData   = 0x0002 // also FILE_ADD_FILE on folders
	fileAppendData  = 0x0004 // also FILE_ADD_SUBDIRECTORY
	fileWriteEA     = 0x0010
	fileDeleteChild = 0x0040
	fileWriteAttrs  = 0x0100
	accessDelete    = 0x00010000
	writeDAC        = 0x00040000
	writeOwner      = 0x00080000
	genericAll      = 0x10000000
	genericWrite    = 0x40000000
	maximumAllowed  = 0x02000000

	writeRights = fileWriteData | fileAppendData | fileWriteEA | fileDeleteChild | fileWriteAttrs |
		accessDelete | writeDAC | writeOwner | genericAll | genericWrite | maximumAllowed
)

// ACE types and flags of the Windows security model (winnt.h).
const (
	aceAllowed         = 0x0 // ACCESS_ALLOWED_ACE_TYPE
	aceDenied          = 0x1 // ACCESS_DENIED_ACE_TYPE
	aceDeniedObject    = 0x6 // ACCESS_DENIED_OBJECT_ACE_TYPE
	aceDeniedCallback  = 0xA // ACCESS_DENIED_CALLBACK_ACE_TYPE
	aceDeniedCbObject  = 0xC // ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE
	aceFlagInheritOnly = 0x8 // INHERIT_ONLY_ACE
)

// NewACE reduces one raw DACL entry to an ACE. sid is the entry's SID as a
// string; it is read only for plain allow and deny entries. Any other
// entry that can grant (object, callback, conditional entries) is judged
// as a grant of everything to an unknown account, and entries that deny
// are ignored like plain deny entries: a file whose access list carrel
// cannot read fully is not trusted.
func NewACE(aceType, flags uint8, mask uint32, sid, account string) ACE {
	a := ACE{SID: sid, Account: account, Mask: mask, Inherit: flags&aceFlagInheritOnly != 0}
	switch aceType {
	case aceAllowed:
		a.Allow = true
	case aceDenied, aceDeniedObject, aceDeniedCallback, aceDeniedCbObject:
		a.Allow = false
	default:
		a = ACE{Account: fmt.Sprintf("an access entry of type %d that carrel cannot judge", aceType),
			Allow: true, Mask: genericAll, Inherit: a.Inherit}
	}
	return a
}

// JudgeACL returns the problems of a path whose owner is ownerSID and whose
// DACL is aces. trusted are extra SIDs allowed to write (the service's own
// account). A nil DACL (everyone has full access) is passed as nilDACL.
func JudgeACL(path, ownerSID string, nilDACL bool, aces []ACE, trusted ...string) []PathProblem {
	ok := map[string]bool{sidSystem: true, sidAdministrators: true, sidTrustedInstall: true}
	for _, s := range trusted {
		ok[s] = true
	}
	var ps []PathProblem
	if !ok[ownerSID] {
		ps = append(ps, PathProblem{Path: path,
			Why: fmt.Sprintf("owned by %s, not SYSTEM or Administrators", ownerSID),
			Fix: fmt.Sprintf(`icacls "%s" /setowner *S-1-5-32-544`, path)})
	}
	if nilDACL {
		return append(ps, PathProblem{Path: path, Why: "has no access list (everyone may write)",
			Fix: resetACL(path)})
	}
	var who []string
	for _, a := range aces {
		if !a.Allow || a.Inherit || a.Mask&writeRights == 0 || ok[a.SID] {
			continue
		}
		if a.SID == sidCreatorOwner {
			continue // resolved to the creator of each child, judged there
		}
		name := a.Account
		if name == "" {
			name = a.SID
		}
		who = append(who, name)
	}
	if len(who) > 0 {
		ps = append(ps, PathProblem{Path: path,
			Why: "writable by " + strings.Join(who, ", "),
			Fix: resetACL(path)})
	}
	return ps
}

// SecureACLArgs are the icacls arguments that give a folder, and through
// inheritance everything in it, an access list of SYSTEM and Administrators
// only, with no entries inherited from above. `carrel service install`,
// the MSI and the fix hints of the permission check all use them.
var SecureACLArgs = []string{"/inheritance:r", "/grant:r", "*" + sidSystem + ":(OI)(CI)F", "*" + sidAdministrators + ":(OI)(CI)F"}

func resetACL(path string) string {
	return fmt.Sprintf(`icacls "%s" %s`, path, strings.Join(SecureACLArgs, " "))
}
