package config

import (
	"strings"
	"testing"
)

func TestJudgeACL(t *testing.T) {
	const users = "S-1-5-32-545"
	const service = "S-1-5-80-1"
	tests := []struct {
		name    string
		owner   string
		nilDACL bool
		aces    []ACE
		want    string // substring of the joined Why; "" = safe
	}{
		{"admins and system only", sidAdministrators, false, []ACE{
			{SID: sidSystem, Allow: true, Mask: genericAll},
			{SID: sidAdministrators, Allow: true, Mask: genericAll},
			{SID: users, Allow: true, Mask: 0x120089}, // read & execute
		}, ""},
		{"users may write", sidAdministrators, false, []ACE{
			{SID: sidAdministrators, Allow: true, Mask: genericAll},
			{SID: users, Account: `BUILTIN\Users`, Allow: true, Mask: fileWriteData},
		}, `writable by BUILTIN\Users`},
		{"users may change the ACL", sidAdministrators, false, []ACE{
			{SID: users, Allow: true, Mask: writeDAC},
		}, "writable by " + users},
		{"deny ACE is not a grant", sidAdministrators, false, []ACE{
			{SID: users, Allow: false, Mask: genericAll},
		}, ""},
		{"inherit-only ACE judged on children", sidAdministrators, false, []ACE{
			{SID: users, Allow: true, Mask: genericAll, Inherit: true},
		}, ""},
		{"service account trusted", sidSystem, false, []ACE{
			{SID: service, Allow: true, Mask: genericWrite},
		}, ""},
		{"owned by a user", users, false, nil, "owned by " + users},
		{"nil DACL", sidAdministrators, true, nil, "no access list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := JudgeACL(`C:\ProgramData\carrel`, tt.owner, tt.nilDACL, tt.aces, service)
			var whys []string
			for _, p := range ps {
				whys = append(whys, p.Why)
				if p.Fix == "" {
					t.Errorf("JudgeACL() problem %q has no fix", p.Why)
				}
			}
			got := strings.Join(whys, "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("JudgeACL() = %q; want %q", got, tt.want)
			}
		})
	}
}
