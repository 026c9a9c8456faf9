package svc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestUnitVerifies renders the unit and has systemd judge it: any warning
// (an unknown or misspelt option, a bad value) fails the test.
func TestUnitVerifies(t *testing.T) {
	analyze := testenv.NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	exe := filepath.Join(dir, "carrel bin", "carrel") // a space, to exercise escaping
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit, err := RenderUnit(exe, []string{"run", "--config", "/etc/carrel/carrel.toml"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "carrel.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, unit)
	}
	// The hardening that the product promises must be present.
	for _, want := range []string{
		`ExecStart=` + strings.ReplaceAll(exe, " ", `\x20`) + ` run --config /etc/carrel/carrel.toml`,
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"CapabilityBoundingSet=CAP_NET_RAW CAP_CHOWN", "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_PACKET",
		"ReadWritePaths=/var/lib/carrel", "Restart=on-failure", "UMask=0077", "LimitNOFILE=1024",
	} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// TestUnitVerifyCatchesMistakes makes sure the check above can fail.
func TestUnitVerifyCatchesMistakes(t *testing.T) {
	analyze := testenv.NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	unit, err := RenderUnit("/bin/true", []string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(unit, "ProtectHome=yes", "ProtectHom=yes", 1)
	path := filepath.Join(dir, "carrel.service")
	os.WriteFile(path, []byte(bad), 0o644)
	out, _ := exec.Command(analyze, "verify", path).CombinedOutput()
	if !strings.Contains(string(out), "ProtectHom") {
		t.Errorf("systemd-analyze verify did not report a misspelt option: %q", out)
	}
}

func TestSystemdQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"run", "run"},
		{"/etc/carrel/carrel.toml", "/etc/carrel/carrel.toml"},
		{"/etc/my carrel/c.toml", `"/etc/my carrel/c.toml"`},
		{`a"b`, `"a\"b"`},
		{"100%", `"100%%"`},
		{"$HOME", `"$$HOME"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := systemdQuote(tt.in); got != tt.want {
			t.Errorf("systemdQuote(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
