package config

import (
	"strings"
	"testing"
)

func TestNewACE(t *testing.T) {
	const users = "S-1-5-32-545"
	tests := []struct {
		name        string
		typ, flags  uint8
		mask        uint32
		sid         string
		wantAllow   bool
		wantInherit bool
		wantSID     string
	}{
		{"allow", aceAllowed, 0, fileWriteData, users, true, false, users},
		{"allow inherited (applies here)", aceAllowed, 0x10 | 0x3, fileWriteData, users, true, false, users},
		{"allow inherit-only", aceAllowed, aceFlagInheritOnly | 0x3, fileWriteData, users, true, true, users},
		{"deny", aceDenied, 0, genericAll, users, false, false, users},
		{"deny object", aceDeniedObject, 0, genericAll, "", false, false, ""},
		{"allow object: unknown grant", 0x5, 0, 0x1, "", true, false, ""},
		{"allow callback: unknown grant", 0x9, 0, 0x1, "", true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewACE(tt.typ, tt.flags, tt.mask, tt.sid, "")
			if a.Allow != tt.wantAllow || a.Inherit != tt.wantInherit || a.SID != tt.wantSID {
				t.Errorf("NewACE(%d, %#x, %#x, %q) = %+v; want allow %v, inherit-only %v, SID %q",
					tt.typ, tt.flags, tt.mask, tt.sid, a, tt.wantAllow, tt.wantInherit, tt.wantSID)
			}
			if tt.wantSID == "" && tt.wantAllow && (a.Mask&writeRights == 0 || a.Account == "") {
				t.Errorf("NewACE(unknown type %d) = %+v; want a named grant of everything", tt.typ, a)
			}
		})
	}
}

// fileAllAccess is what icacls's F and SDDL's FA grant.
const fileAllAccess = 0x001F01FF

// TestSecureACLPassesJudge: the ACL that `carrel service install` and the
// MSI set with SecureACLArgs is one the permission check accepts, on the
// folder and (by inheritance) on the config inside it.
func TestSecureACLPassesJudge(t *testing.T) {
	var aces []ACE
	options := map[string]bool{}
	for _, a := range SecureACLArgs {
		if strings.HasPrefix(a, "/") {
			options[a] = true
			continue
		}
		sid, perm, ok := strings.Cut(strings.TrimPrefix(a, "*"), ":")
		if !ok {
			t.Fatalf("icacls grant %q: want *SID:permissions", a)
		}
		if perm != "(OI)(CI)F" {
			t.Fatalf("icacls grant %q: want full access inherited by files and folders", a)
		}
		// As Windows stores the grant on the folder (OI|CI, 0x3) and
		// on the file created in it (inherited, 0x10).
		aces = append(aces, NewACE(aceAllowed, 0x3, fileAllAccess, sid, ""))
	}
	// Without /inheritance:r the folder keeps what ProgramData passes
	// down (see the next test); /grant:r replaces rather than adds.
	if len(options) != 2 || !options["/inheritance:r"] || !options["/grant:r"] {
		t.Errorf("icacls options %v; want exactly /inheritance:r and /grant:r", options)
	}
	if len(aces) != 2 {
		t.Fatalf("SecureACLArgs grants %d accounts; want SYSTEM and Administrators", len(aces))
	}
	for _, owner := range []string{sidSystem, sidAdministrators} {
		if ps := JudgeACL(`C:\ProgramData\carrel`, owner, false, aces); len(ps) != 0 {
			t.Errorf("JudgeACL(secure ACL, owner %s) = %+v; want no problems", owner, ps)
		}
	}
}

// TestProgramDataInheritanceRefused: a folder made under %ProgramData%
// without carrel's ACL inherits the default entries, which let Users
// create and write files; the check must refuse it. The entries are those
// of a default Windows 10/11 ProgramData, as stored on a child folder.
func TestProgramDataInheritanceRefused(t *testing.T) {
	const (
		users        = "S-1-5-32-545"
		inheritedOCI = 0x10 | 0x3
		inheritedCI  = 0x10 | 0x2
	)
	aces := []ACE{
		NewACE(aceAllowed, inheritedOCI, fileAllAccess, sidSystem, `NT AUTHORITY\SYSTEM`),
		NewACE(aceAllowed, inheritedOCI, fileAllAccess, sidAdministrators, `BUILTIN\Administrators`),
		NewACE(aceAllowed, 0x10|0x3|aceFlagInheritOnly, genericAll, sidCreatorOwner, `CREATOR OWNER`),
		NewACE(aceAllowed, inheritedOCI, 0x001200A9, users, `BUILTIN\Users`), // read & execute
		NewACE(aceAllowed, inheritedCI, 0x00100116, users, `BUILTIN\Users`),  // create files, folders; write attributes
	}
	ps := JudgeACL(`C:\ProgramData\carrel`, sidAdministrators, false, aces)
	if len(ps) != 1 || !strings.Contains(ps[0].Why, `writable by BUILTIN\Users`) || !strings.Contains(ps[0].Fix, "/inheritance:r") {
		t.Errorf("JudgeACL(ProgramData default) = %+v; want Users named and the icacls fix", ps)
	}
}
