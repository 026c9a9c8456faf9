package svc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestRelayUnitVerifies renders carrel-witness.service beside carrel.service
// and has systemd judge both: no warning, and the confinement the README
// promises is written down (the systemd test shows it in force).
func TestRelayUnitVerifies(t *testing.T) {
	analyze := testenv.NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	exe := filepath.Join(dir, "carrel bin", "carrel")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "/etc/carrel dir/carrel.toml"
	relay, err := RenderRelayUnit(exe, cfg)
	if err != nil {
		t.Fatal(err)
	}
	main, err := RenderUnit(exe, []string{"run", "--config", cfg})
	if err != nil {
		t.Fatal(err)
	}
	for name, unit := range map[string]string{RelayUnitName: relay, "carrel.service": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, RelayUnitName), filepath.Join(dir, "carrel.service")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, relay)
	}
	esc := strings.ReplaceAll(exe, " ", `\x20`)
	for _, want := range []string{
		`ExecStartPre=+` + esc + ` witness-relay allow --config "` + cfg + `"`,
		`ExecStart=` + esc + ` witness-relay run --config "` + cfg + `"`,
		"CapabilityBoundingSet=", "NoNewPrivileges=yes", "ProtectSystem=strict", "InaccessiblePaths=-/var/lib/carrel",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "IPAddressDeny=any", "PartOf=carrel.service", "Before=carrel.service",
		"Restart=always", "RuntimeDirectory=carrel-witness",
	} {
		if !strings.Contains(relay, "\n"+want+"\n") {
			t.Errorf("relay unit lacks %q", want)
		}
	}
	if strings.Contains(relay, "\nIPAddressAllow=") {
		t.Errorf("the relay unit allows addresses of its own; only its ExecStartPre may, from the config")
	}
	// The service keeps no IP socket and is pointed at the relay.
	for _, want := range []string{"Wants=carrel-witness.service", "Environment=CARREL_WITNESS_RELAY=/run/carrel-witness/relay.sock",
		"RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_PACKET"} {
		if !strings.Contains(main, "\n"+want+"\n") {
			t.Errorf("carrel.service lacks %q", want)
		}
	}
}
