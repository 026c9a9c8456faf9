package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

func TestCheckPermissions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Linux mode checks; JudgeACL covers Windows")
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) (cfg, data string)
		wantBad string // a path suffix that must be named; "" = safe
	}{
		{"safe", func(t *testing.T, dir string) (string, string) {
			return write(t, dir, "c.toml", 0o600), mkdir(t, dir, "data", 0o700)
		}, ""},
		{"data not created yet", func(t *testing.T, dir string) (string, string) {
			return write(t, dir, "c.toml", 0o644), filepath.Join(dir, "later", "data")
		}, ""},
		{"config group-writable", func(t *testing.T, dir string) (string, string) {
			return write(t, dir, "c.toml", 0o664), mkdir(t, dir, "data", 0o700)
		}, "c.toml"},
		{"config world-writable", func(t *testing.T, dir string) (string, string) {
			return write(t, dir, "c.toml", 0o646), mkdir(t, dir, "data", 0o700)
		}, "c.toml"},
		{"data world-writable", func(t *testing.T, dir string) (string, string) {
			return write(t, dir, "c.toml", 0o600), mkdir(t, dir, "data", 0o777)
		}, "data"},
		{"parent writable", func(t *testing.T, dir string) (string, string) {
			p := mkdir(t, dir, "etc", 0o777)
			return write(t, p, "c.toml", 0o600), mkdir(t, dir, "data", 0o700)
		}, "etc"},
		{"sticky parent ok", func(t *testing.T, dir string) (string, string) {
			p := mkdir(t, dir, "tmp", 0o777|os.ModeSticky)
			return write(t, p, "c.toml", 0o600), mkdir(t, dir, "data", 0o700)
		}, ""},
		{"symlink to unsafe file", func(t *testing.T, dir string) (string, string) {
			target := write(t, dir, "real.toml", 0o666)
			link := filepath.Join(dir, "c.toml")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link, mkdir(t, dir, "data", 0o700)
		}, "real.toml"},
		{"config is a folder", func(t *testing.T, dir string) (string, string) {
			return mkdir(t, dir, "c.toml", 0o700), mkdir(t, dir, "data", 0o700)
		}, "c.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			cfg, data := tt.setup(t, dir)
			err := CheckPermissions(cfg, data)
			if tt.wantBad == "" {
				if err != nil {
					t.Fatalf("CheckPermissions() = %v; want nil", err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("CheckPermissions() = %v; want a PermissionError naming %s", err, tt.wantBad)
			}
			found := false
			for _, p := range pe.Problems {
				found = found || strings.HasSuffix(p.Path, tt.wantBad)
			}
			if !found {
				t.Errorf("CheckPermissions() = %v; want %s named", err, tt.wantBad)
			}
			if !strings.Contains(pe.Hint(), "chmod go-w") && !strings.Contains(err.Error(), "not a") {
				t.Errorf("Hint() = %q; want a chmod fix", pe.Hint())
			}
		})
	}
}

func TestCheckPermissionsOwner(t *testing.T) {
	testenv.NeedRoot(t) // to give a file to another account
	dir := t.TempDir()
	cfg := write(t, dir, "c.toml", 0o600)
	if err := os.Chown(cfg, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := CheckPermissions(cfg, filepath.Join(dir, "data"))
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("CheckPermissions(file of nobody) = %v; want owner named", err)
	}
}

func write(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("version = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func mkdir(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

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
