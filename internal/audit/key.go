package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The signing key file holds one line: a note signer key
// ("PRIVATE+KEY+<origin>+<hash>+<base64>"). It is created private to root
// (0600) or, on Windows, to SYSTEM and Administrators, by writing a
// temporary file with those rights and renaming it into place, so a crash
// never leaves half a key and the key is never readable by others, not even
// for a moment.

// signingKey is a loaded key: its signer, its verifier key string and the
// fingerprint recorded in key.created entries.
type signingKey struct {
	signer      note.Signer
	verifier    string
	fingerprint []byte
}

// Fingerprint returns the SHA-256 of a verifier key string, the value a
// key.created entry records. A head librarian can compute it with
// `printf %s KEY | sha256sum`.
func Fingerprint(verifierKey string) []byte {
	sum := sha256.Sum256([]byte(verifierKey))
	return sum[:]
}

// loadOrCreateKey reads the key at path, or creates one named name when
// there is none.
func loadOrCreateKey(path, name string) (signingKey, error) {
	k, err := readSigningKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return k, fmt.Errorf("generating audit signing key: %w", err)
	}
	if err := writePrivateFile(path, []byte(skey+"\n")); err != nil {
		return k, fmt.Errorf("writing audit signing key %q: %w", path, err)
	}
	return parseSigningKey(skey)
}

// ReadVerifierKey returns the verifier key of the signing key file at path,
// for `carrel audit key`.
func ReadVerifierKey(path string) (string, error) {
	k, err := readSigningKey(path)
	return k.verifier, err
}

func readSigningKey(path string) (signingKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return signingKey{}, fmt.Errorf("reading audit signing key: %w", err)
	}
	k, err := parseSigningKey(string(bytes.TrimRight(b, "\r\n")))
	if err != nil {
		return k, fmt.Errorf("audit signing key %q: %w", path, err)
	}
	return k, nil
}

// parseSigningKey derives the verifier from a signer key: the note package
// keeps the Ed25519 seed, from which the public key follows.
func parseSigningKey(skey string) (signingKey, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return signingKey{}, fmt.Errorf("not a signing key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64>; the base64 may itself hold '+'.
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return signingKey{}, fmt.Errorf("not an Ed25519 signing key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{signer: s, verifier: vkey, fingerprint: Fingerprint(vkey)}, nil
}

// writePrivateFile writes data to path through a private temporary file and
// a rename.
func writePrivateFile(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a crash; it was never renamed, so never used
	f, err := createPrivate(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}
