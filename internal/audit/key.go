package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/carrel-lib/carrel/internal/keyfile"
)

// The signing key file holds one line: a note signer key
// ("PRIVATE+KEY+<origin>+<hash>+<base64>"). It is created private to root
// (0600) or, on Windows, to SYSTEM and Administrators (keySDDL), whole or
// not at all and never over an existing key (package keyfile): a crash
// never leaves half a key, the key is never readable by others, not even
// for a moment, and processes that open a new log at once all sign with
// the one key on disk.

// ErrKeyDamaged reports that the signing key file is there but holds no
// signing key (it is empty, cut or overwritten). carrel never replaces it by itself:
// the error says what to do.
var ErrKeyDamaged = errors.New("audit signing key damaged")

// maxKeyFile bounds what is read of the key file: a key line is about 100
// bytes.
const maxKeyFile = 4 << 10

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
	// Older versions wrote the key through path+".tmp"; one left by
	// a crash was never used. (keyfile removes its own leftovers.)
	os.Remove(path + ".tmp")
	err = keyfile.Create(path, []byte(skey+"\n"), keySDDL)
	if errors.Is(err, fs.ErrExist) {
		// Another process opening the log made it first: its key is the key.
		return readSigningKey(path)
	}
	if err != nil {
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
	f, err := os.Open(path)
	if err != nil {
		return signingKey{}, fmt.Errorf("reading audit signing key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return signingKey{}, fmt.Errorf("reading audit signing key %q: %w", path, err)
	}
	line := string(bytes.TrimRight(b, "\r\n"))
	k, err := parseSigningKey(line)
	if err == nil {
		return k, nil
	}
	what := "holds no signing key (" + err.Error() + ")"
	if strings.TrimSpace(line) == "" {
		what = "is empty"
	}
	return k, &keyDamagedError{fmt.Sprintf("audit signing key %q %s: it was damaged, or left by an older carrel stopped while creating it; "+
		"restore it from a backup of the data folder; only if there is none, move it aside and carrel makes a new key at its next start "+
		"and records it in the log — the checkpoints signed so far still verify (the log keeps every key that signed it), "+
		"but every witness and whoever keeps the old verifier key must be given the new one (`carrel audit key`), "+
		"or they will refuse the log's new checkpoints", path, what)}
}

// keyDamagedError is a signing key file that holds no key.
type keyDamagedError struct{ msg string }

func (e *keyDamagedError) Error() string        { return e.msg }
func (e *keyDamagedError) Is(target error) bool { return target == ErrKeyDamaged }

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
