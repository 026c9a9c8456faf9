package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareInstall: install writes the default config and the data
// folder with permissions the service accepts, never overwrites an existing
// config, and refuses an invalid one.
func TestPrepareInstall(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cfgPath := filepath.Join(dir, "etc", "carrel.toml")
	data := filepath.Join(dir, "var", "carrel")
	// A config as IT would pre-seed it: no group, so the test creates none.
	os.MkdirAll(filepath.Dir(cfgPath), 0o755)
	seed := "version = 1\n[pc]\nid = \"pc-01\"\n[storage]\ndata_dir = \"" + data + "\"\n[booking]\nclient_group = \"\"\n"
	os.WriteFile(cfgPath, []byte(seed), 0o600)

	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out}
	if err := prepareInstall(e, cfgPath); err != nil {
		t.Fatalf("prepareInstall() = %v", err)
	}
	fi, err := os.Stat(data)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder = %v, %v; want mode 0700", fi, err)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != seed {
		t.Error("prepareInstall changed an existing config")
	}

	// No config yet: the commented default is written, readable by root only.
	fresh := filepath.Join(dir, "etc2", "carrel.toml")
	// (Only the writing: the default's data folder is /var/lib/carrel.)
	if err := writeDefaultConfig(e, fresh); err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(fresh)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("default config = %v, %v; want written with mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(fresh); !strings.Contains(string(b), "[[case]]") {
		t.Error("the written config is not the commented default")
	}

	// An invalid existing config is refused with a hint.
	os.WriteFile(cfgPath, []byte("version = 1\n[booking]\nretention = \"0d\"\n"), 0o600)
	if err := prepareInstall(e, cfgPath); err == nil || !strings.Contains(err.Error(), "booking.retention") {
		t.Errorf("prepareInstall(invalid config) = %v; want the problem named", err)
	}
}
