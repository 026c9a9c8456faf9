package api

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

const (
	testGroupSID = "S-1-5-21-1004336348-1177238915-682003330-1013"
	testUserSID  = "S-1-5-21-1004336348-1177238915-682003330-1001"
)

// TestPipeSDDL pins the pipe's security descriptor.
func TestPipeSDDL(t *testing.T) {
	tests := []struct{ owner, self, group, want string }{
		{sidSystem, sidSystem, testGroupSID, "O:SYD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x0012019b;;;" + testGroupSID + ")"},
		{sidSystem, sidSystem, "", "O:SYD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"},
		{sidAdministrators, testUserSID, testGroupSID, "O:BAD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + testUserSID + ")(A;;0x0012019b;;;" + testGroupSID + ")"},
		{testUserSID, testUserSID, testGroupSID, "O:" + testUserSID + "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + testUserSID + ")(A;;0x0012019b;;;" + testGroupSID + ")"},
		{"", "", "", "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"},
	}
	for _, tt := range tests {
		if got := pipeSDDL(tt.owner, tt.self, tt.group); got != tt.want {
			t.Errorf("pipeSDDL(%q, %q, %q) = %q; want %q", tt.owner, tt.self, tt.group, got, tt.want)
		}
	}
}

// sambaACE is one entry as Samba's SDDL parser reads it.
type sambaACE struct {
	Type  int    `json:"type"`
	Flags int    `json:"flags"`
	Mask  uint32 `json:"mask"`
	SID   string `json:"sid"`
}

type sambaSD struct {
	Owner     string     `json:"owner"`
	Control   int        `json:"control"`
	ACEs      []sambaACE `json:"aces"`
	Canonical string     `json:"sddl"`
}

// sambaParse has Samba (python3-samba, an implementation of MS-DTYP
// independent of ours) parse a security descriptor. Samba's parser skips
// what it does not understand in places, so the descriptor it prints back
// must equal the one given.
func sambaParse(python, sddl string) (sambaSD, error) {
	const script = `
import json, sys
from samba.dcerpc import security
sd = security.descriptor.from_sddl(sys.argv[1], security.dom_sid("S-1-5-21-1-2-3"))
print(json.dumps({"owner": str(sd.owner_sid) if sd.owner_sid else "", "control": sd.type, "sddl": sd.as_sddl(), "aces": [
    {"type": a.type, "flags": a.flags, "mask": a.access_mask, "sid": str(a.trustee)} for a in sd.dacl.aces]}))
`
	var sd sambaSD
	out, err := exec.Command(python, "-c", script, sddl).CombinedOutput()
	if err != nil {
		return sd, fmt.Errorf("Samba cannot parse %q (is python3-samba installed?): %v\n%s", sddl, err, out)
	}
	if err := json.Unmarshal(out, &sd); err != nil {
		return sd, fmt.Errorf("%v: %s", err, out)
	}
	if sd.Canonical != sddl {
		return sd, fmt.Errorf("Samba reads %q as %q", sddl, sd.Canonical)
	}
	return sd, nil
}

// TestPipeSDDLJudgedBySamba: the descriptor parses, names its owner, is protected from
// inheritance, denies the network first, gives full access only to
// SYSTEM, Administrators and the service, and lets the group read and
// write but not create pipe instances.
func TestPipeSDDLJudgedBySamba(t *testing.T) {
	const (
		aceAllowed     = 0
		aceDenied      = 1
		seDACLPresent  = 0x0004
		seDACLProtect  = 0x1000
		genericAll     = 0x10000000
		sidNetwork     = "S-1-5-2"
		fileAllAccess  = 0x001f01ff
		genericWriteBs = 0x40000000
	)
	sd, err := sambaParse(testenv.NeedTool(t, "/usr/bin/python3"), pipeSDDL(sidAdministrators, testUserSID, testGroupSID))
	if err != nil {
		t.Fatal(err)
	}
	control, aces := sd.Control, sd.ACEs
	if sd.Owner != sidAdministrators {
		t.Errorf("owner %q; want %s, which clients trust", sd.Owner, sidAdministrators)
	}
	if control&seDACLPresent == 0 || control&seDACLProtect == 0 {
		t.Errorf("control %#x: want a present, protected DACL", control)
	}
	if len(aces) != 5 {
		t.Fatalf("Samba reads %d entries: %+v", len(aces), aces)
	}
	if a := aces[0]; a.Type != aceDenied || a.SID != sidNetwork || a.Mask != genericAll {
		t.Errorf("first entry %+v; want NETWORK denied everything", a)
	}
	full := map[string]bool{}
	for _, a := range aces[1:] {
		if a.Type != aceAllowed || a.Flags != 0 {
			t.Errorf("entry %+v: want a plain allow entry", a)
		}
		if a.Mask == genericAll {
			full[a.SID] = true
		}
	}
	for _, s := range []string{sidSystem, sidAdministrators, testUserSID} {
		if !full[s] {
			t.Errorf("%s lacks full access", s)
		}
	}
	g := aces[4]
	if g.SID != testGroupSID || full[g.SID] {
		t.Fatalf("group entry %+v", g)
	}
	if g.Mask&(pipeReadData|pipeWriteData) != pipeReadData|pipeWriteData {
		t.Errorf("group mask %#x cannot read and write", g.Mask)
	}
	if g.Mask&pipeCreateInstance != 0 || g.Mask&(genericAll|genericWriteBs) != 0 || g.Mask&^fileAllAccess != 0 {
		t.Errorf("group mask %#x lets members create pipe instances or grants generic rights", g.Mask)
	}
	// What a client asks for fits in what the group is given.
	if mapped := uint32(0x00120089) | PipeClientAccess&^genericRead; mapped&^g.Mask != 0 {
		t.Errorf("PipeClientAccess %#x (mapped %#x) exceeds the group's rights %#x", PipeClientAccess, mapped, g.Mask)
	}
}

// TestSambaParseFails makes sure the judge above can fail: on a
// descriptor Samba rejects, and on one it reads only in part.
func TestSambaParseFails(t *testing.T) {
	python := testenv.NeedTool(t, "/usr/bin/python3")
	for _, bad := range []string{"D:P(A;;GA;;;ZZZ)", "D:P(A;;GA;;;NOT-A-SID)", "D:P(A;;GQ;;;SY)"} {
		if _, err := sambaParse(python, bad); err == nil {
			t.Errorf("sambaParse(%q) succeeded; want an error", bad)
		}
	}
}
