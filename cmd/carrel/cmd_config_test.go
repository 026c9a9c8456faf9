package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
)

// TestConfigInitKilledWhileWriting kills `carrel config init --out` (the
// real command in a child process, SIGKILL) at each step of writing the
// file, as installers run it: the config is then absent, and the next
// install writes it, or whole. Before, a kill between creating and
// writing left an empty file that every later `config init` left
// unchanged ("exists") and the service refused.
func TestConfigInitKilledWhileWriting(t *testing.T) {
	want := config.ExampleWith(config.ExampleOptions{PCID: "pc-01"})
	for _, step := range keyfiletest.Steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "carrel.toml")
			keyfiletest.KillAt(t, step, out)
			if _, err := os.Lstat(out); errors.Is(err, fs.ErrNotExist) {
				var stdout, stderr strings.Builder
				e := &env{stdout: &stdout, stderr: &stderr, getenv: os.Getenv}
				if code := run(context.Background(), e, []string{"config", "init", "--pc-id", "pc-01", "--out", out}); code != 0 {
					t.Fatalf("config init after a kill at %q: exit %d: %s", step, code, stderr.String())
				}
			}
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("config after a kill at %q and a second init = %d bytes, %v; want the whole %d-byte default", step, len(got), err, len(want))
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("after a kill at %q the folder holds %d files; want only the config", step, len(entries))
			}
		})
	}
}
