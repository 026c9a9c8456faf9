package booking

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
)

func TestMain(m *testing.M) {
	keyfiletest.Child(func(path string) error {
		_, _, err := LoadOrCreateSecret(path)
		return err
	})
	os.Exit(m.Run())
}

// TestSecretKilledWhileCreated kills a first start (a real child process,
// SIGKILL) at each step of creating the patron key, and starts again: the
// key is there whole or not at all, so the next start always works, and a
// key the killed start made whole is the one kept.
func TestSecretKilledWhileCreated(t *testing.T) {
	for _, step := range keyfiletest.Steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "patron.key")
			keyfiletest.KillAt(t, step, p)
			left, readErr := os.ReadFile(p)
			key, created, err := LoadOrCreateSecret(p)
			if err != nil {
				t.Fatalf("LoadOrCreateSecret after a kill at %q = %v; want a key", step, err)
			}
			if len(key) != secretLen {
				t.Fatalf("LoadOrCreateSecret after a kill at %q = %d bytes; want %d", step, len(key), secretLen)
			}
			if readErr == nil && (created || !bytes.Equal(left, key)) {
				t.Errorf("after a kill at %q the whole key on disk was replaced (created %v)", step, created)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "patron.key" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("after a kill at %q and a start the folder holds %q; want only patron.key", step, names)
			}
		})
	}
}

// TestSecretEmptyOrShort: a patron key found empty or short (left by an
// older carrel, or damaged) is a specific error that says how to fix it
// and what deleting the key costs, and the file is left as it is: a new
// key would silently orphan every card hash made with the old one.
func TestSecretEmptyOrShort(t *testing.T) {
	for name, content := range map[string][]byte{"empty": nil, "short": []byte("short"), "long": bytes.Repeat([]byte{1}, 33)} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "patron.key")
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateSecret(p)
			if !errors.Is(err, ErrSecretDamaged) {
				t.Fatalf("LoadOrCreateSecret(%s key) = %v; want ErrSecretDamaged", name, err)
			}
			for _, want := range []string{p, "restore it from a backup", "delete it", "card", "carrel booking list --patron"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LoadOrCreateSecret(%s key) = %q; want it to say %q", name, err, want)
				}
			}
			if name == "empty" && !strings.Contains(err.Error(), "is empty") {
				t.Errorf("LoadOrCreateSecret(empty key) = %q; want it to say the key is empty", err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, content) {
				t.Errorf("LoadOrCreateSecret(%s key) changed the file to %d bytes", name, len(got))
			}
		})
	}
}
