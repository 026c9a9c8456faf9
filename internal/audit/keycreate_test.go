package audit

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestKeyCreatedOnceByConcurrentOpeners: the service, an export and a
// report may open a new log's folder at the same moment (a first start).
// Every one of them must end up with the one key on disk: a key replaced
// after another process loaded it would sign checkpoints with a key the
// file no longer holds.
func TestKeyCreatedOnceByConcurrentOpeners(t *testing.T) {
	const openers, rounds = 8, 30
	for round := range rounds {
		path := filepath.Join(t.TempDir(), KeyFile)
		keys := make([]signingKey, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() { keys[i], errs[i] = loadOrCreateKey(path, testOrigin) })
		}
		wg.Wait()
		onDisk, err := ReadVerifierKey(path)
		if err != nil {
			t.Fatalf("round %d: reading the key after the race: %v", round, err)
		}
		for i := range openers {
			if errs[i] != nil {
				t.Fatalf("round %d: opener %d: %v", round, i, errs[i])
			}
			if keys[i].verifier != onDisk {
				t.Fatalf("round %d: opener %d signs with %s, the file holds %s", round, i, keys[i].verifier, onDisk)
			}
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("round %d: %d files beside the key; want none", round, len(entries)-1)
		}
	}
}

// TestEmptyOrDamagedKey: a signing key file that holds no key is a
// specific error naming the file and the fix, and what replacing the key
// means for witnesses; the file is left as it was.
func TestEmptyOrDamagedKey(t *testing.T) {
	for name, content := range map[string][]byte{"empty": nil, "blank line": []byte("\n"), "garbage": []byte("not a key\n"),
		"cut": []byte("PRIVATE+KEY+carrel/test+1234")} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(key, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(filepath.Join(dir, DBFile), Options{Origin: testOrigin, KeyPath: key})
			if !errors.Is(err, ErrKeyDamaged) {
				t.Fatalf("Open with a %s key = %v; want ErrKeyDamaged", name, err)
			}
			for _, want := range []string{key, "restore it from a backup", "move it aside", "witness", "carrel audit key"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open with a %s key = %q; want it to say %q", name, err, want)
				}
			}
			if got, _ := os.ReadFile(key); !bytes.Equal(got, content) {
				t.Errorf("Open with a %s key changed the file", name)
			}
			if _, err := ReadVerifierKey(key); !errors.Is(err, ErrKeyDamaged) {
				t.Errorf("ReadVerifierKey(%s key) = %v; want ErrKeyDamaged", name, err)
			}
		})
	}
	if _, err := ReadVerifierKey(filepath.Join(t.TempDir(), KeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadVerifierKey(missing) = %v; want fs.ErrNotExist", err)
	}
}
