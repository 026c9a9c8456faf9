package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// carrelCmd returns a command that runs this test binary as carrel.
func carrelCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "CARREL_TEST_MAIN=1", "TZ=UTC")
	return cmd
}

// carrelRun runs carrel to completion and returns its output and exit code.
func carrelRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := carrelCmd(t, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// demo writes a config from `carrel config init --data-dir` under a fresh
// folder, with edits applied, and returns its path.
func demo(t *testing.T, edit func(string) string) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	out, code := carrelRun(t, "config", "init", "--data-dir", filepath.Join(dir, "data"))
	if code != 0 {
		t.Fatalf("config init: %d %s", code, out)
	}
	out = strings.Replace(out, "# id = \"pc-01\"", "id = \"pc-e2e\"", 1)
	if edit != nil {
		out = edit(out)
	}
	cfgPath = filepath.Join(dir, "carrel.toml")
	if err := os.WriteFile(cfgPath, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath
}
