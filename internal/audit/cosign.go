package audit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// WitnessKey is a transparency-log witness's verifier key: a C2SP
// signed-note verifier key of type 0x04, tlog-cosignature/v1 (Ed25519 over
// the checkpoint and a timestamp), in the form litewitness logs at start
// (vkey=NAME+HASH+BASE64) and the witness's operator publishes.
//
// Verifying uses filippo.io/torchwood's cosignature code: carrel parses the
// key's text, torchwood builds the verifier from the public key, and the key
// is accepted only when torchwood's verifier prints back exactly the text
// given (name, key hash and key).
type WitnessKey struct {
	Name string // the witness's name, as in its cosignature lines
	Hash uint32 // the key hash cosignature lines start with
	Text string // the verifier key as given

	verifier note.Verifier
}

// algCosignature is the signed-note key type of tlog-cosignature/v1.
const (
	algEd25519     = 0x01
	algCosignature = 0x04
)

// ParseWitnessKey reads a witness verifier key.
func ParseWitnessKey(vkey string) (WitnessKey, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return WitnessKey{}, fmt.Errorf("witness key %q is not NAME+HASH+KEY", vkey)
	}
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return WitnessKey{}, fmt.Errorf("witness key %q: its name is empty or holds spaces or control characters", vkey)
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil || len(hash16) != 8 {
		return WitnessKey{}, fmt.Errorf("witness key %q: its key hash is not 8 hex digits", vkey)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(raw) == 0 {
		return WitnessKey{}, fmt.Errorf("witness key %q: its key is not base64", vkey)
	}
	switch {
	case raw[0] == algEd25519:
		return WitnessKey{}, fmt.Errorf("witness key %q is a plain Ed25519 note key (type 1), such as a log's `carrel audit key`; a witness cosigns with a tlog-cosignature key (type 4): copy the vkey its operator publishes (litewitness logs it at start)", vkey)
	case raw[0] != algCosignature:
		return WitnessKey{}, fmt.Errorf("witness key %q has key type %d; want 4 (tlog-cosignature/v1)", vkey, raw[0])
	case len(raw) != 1+ed25519.PublicKeySize:
		return WitnessKey{}, fmt.Errorf("witness key %q: an Ed25519 key has %d bytes, not %d", vkey, ed25519.PublicKeySize, len(raw)-1)
	}
	s, err := torchwood.NewCosignatureSigner(name, publicOnly(raw[1:]))
	if err != nil {
		return WitnessKey{}, fmt.Errorf("witness key %q: %w", vkey, err)
	}
	v := s.Verifier()
	if v.KeyHash() != uint32(hash) {
		return WitnessKey{}, fmt.Errorf("witness key %q: the key hash %s does not match the name and key (want %08x): the key was mistyped", vkey, hash16, v.KeyHash())
	}
	if v.String() != vkey {
		return WitnessKey{}, fmt.Errorf("witness key %q is not written in canonical form (%s)", vkey, v.String())
	}
	return WitnessKey{Name: name, Hash: uint32(hash), Text: vkey, verifier: v}, nil
}

func (k WitnessKey) String() string { return k.Text }

// publicOnly is a crypto.Signer that knows only a public key: torchwood
// builds a cosignature verifier from a signer, and carrel never signs as a
// witness.
type publicOnly ed25519.PublicKey

func (p publicOnly) Public() crypto.PublicKey { return ed25519.PublicKey(p) }

func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("carrel holds only the witness's public key")
}

// Cosignature is one witness's signature on a checkpoint, as the witness
// sent it.
type Cosignature struct {
	Witness string    // the name in the signature line (the key's name)
	KeyHash uint32    // the key hash in the signature line
	Line    string    // "— NAME BASE64\n", byte for byte
	Signed  time.Time // the time the witness put in its cosignature
}

// maxCosignatureLines bounds how many signature lines a witness's answer
// may hold: litewitness sends one, a witness with several keys a few.
const maxCosignatureLines = 16

// ParseCosignatures splits a witness's answer to add-checkpoint (one or
// more signature lines) into lines, in canonical form only: exactly
// "— NAME BASE64\n", no blank or repeated line.
func ParseCosignatures(body []byte) ([]string, error) {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, fmt.Errorf("cosignature: the answer is empty or does not end with a newline")
	}
	var lines []string
	seen := map[string]bool{}
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if line == "" {
			continue
		}
		if _, _, err := splitSignatureLine(line); err != nil {
			return nil, err
		}
		if seen[line] {
			return nil, fmt.Errorf("cosignature: signature line repeated")
		}
		seen[line] = true
		lines = append(lines, line)
		if len(lines) > maxCosignatureLines {
			return nil, fmt.Errorf("cosignature: more than %d signature lines", maxCosignatureLines)
		}
	}
	return lines, nil
}

// splitSignatureLine returns the name and the decoded signature of a
// signed-note signature line.
func splitSignatureLine(line string) (string, []byte, error) {
	rest, ok := strings.CutPrefix(line, "— ")
	rest, ok2 := strings.CutSuffix(rest, "\n")
	name, b64, ok3 := strings.Cut(rest, " ")
	if !ok || !ok2 || !ok3 || name == "" || strings.ContainsAny(b64, " \n") {
		return "", nil, fmt.Errorf("cosignature: malformed signature line %q", strings.TrimSpace(line))
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(sig) < 4 {
		return "", nil, fmt.Errorf("cosignature: signature line %q is not canonical base64 with a key hash", strings.TrimSpace(line))
	}
	return name, sig, nil
}

// ErrUnknownWitness reports a cosignature by a witness none of the given
// keys belongs to; it can be neither trusted nor refuted.
var ErrUnknownWitness = errors.New("cosignature by a witness whose key is not given")

// VerifyCosignature checks that line is a valid cosignature on the signed
// checkpoint cp by one of keys, and returns it with the key it verified
// with. It fails with ErrUnknownWitness when no key has the line's name and
// key hash.
func VerifyCosignature(cp Checkpoint, line string, keys []WitnessKey) (Cosignature, WitnessKey, error) {
	name, sig, err := splitSignatureLine(line)
	if err != nil {
		return Cosignature{}, WitnessKey{}, err
	}
	hash := binary.BigEndian.Uint32(sig)
	var key WitnessKey
	found := false
	for _, k := range keys {
		if k.Name == name && k.Hash == hash {
			key, found = k, true
			break
		}
	}
	if !found {
		return Cosignature{}, WitnessKey{}, fmt.Errorf("%w (%s+%08x)", ErrUnknownWitness, name, hash)
	}
	if len(cp.Note) == 0 || !bytes.HasSuffix(cp.Note, []byte("\n")) {
		return Cosignature{}, key, fmt.Errorf("cosignature: the checkpoint is not a signed note")
	}
	// The checkpoint's note with the cosignature added is a note signed by
	// the log and the witness; only the witness's key is given here, so the
	// log's signature is left unverified and the witness's must verify.
	msg := append(bytes.Clone(cp.Note), line...)
	n, err := note.Open(msg, note.VerifierList(key.verifier))
	if err != nil {
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return Cosignature{}, key, fmt.Errorf("cosignature by %s+%08x on checkpoint %d does not verify: the cosignature or the checkpoint was changed", name, hash, cp.Size)
		}
		return Cosignature{}, key, fmt.Errorf("cosignature by %s+%08x on checkpoint %d: %w", name, hash, cp.Size, err)
	}
	if len(n.Sigs) != 1 {
		return Cosignature{}, key, fmt.Errorf("cosignature by %s+%08x on checkpoint %d: not verified", name, hash, cp.Size)
	}
	ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
	if err != nil {
		return Cosignature{}, key, fmt.Errorf("cosignature by %s+%08x: %w", name, hash, err)
	}
	return Cosignature{Witness: name, KeyHash: hash, Line: line, Signed: time.Unix(ts, 0).UTC()}, key, nil
}

// ParseWitnessKeys parses each of keys.
func ParseWitnessKeys(keys []string) ([]WitnessKey, error) {
	out := make([]WitnessKey, 0, len(keys))
	for _, k := range keys {
		wk, err := ParseWitnessKey(strings.TrimSpace(k))
		if err != nil {
			return nil, err
		}
		out = append(out, wk)
	}
	return out, nil
}

// OpenCosigned opens a cosigned checkpoint (what `carrel audit checkpoint
// --cosigned` prints and an export bundle carries): the log's signature
// must verify with logKey, every cosignature by one of keys must verify,
// and at least quorum of keys (each counted once) must have cosigned it;
// else the error matches ErrNotWitnessed. Cosignatures by other keys are
// ignored. It returns the checkpoint and the cosignatures that verified.
func OpenCosigned(msg []byte, logKey string, keys []WitnessKey, quorum int) (Checkpoint, []Cosignature, error) {
	cp, err := OpenCheckpoint(msg, logKey)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	own, others, err := splitNoteSignatures(msg, cp.Origin)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	base := cp
	base.Note = own
	var out []Cosignature
	by := map[string]bool{}
	for _, line := range others {
		c, k, err := VerifyCosignature(base, line, keys)
		if errors.Is(err, ErrUnknownWitness) {
			continue
		}
		if err != nil {
			return Checkpoint{}, nil, err
		}
		out = append(out, c)
		by[k.Text] = true
	}
	if quorum = max(quorum, 1); len(by) < quorum {
		return cp, out, fmt.Errorf("%w: %d of the %d witness keys cosigned checkpoint %d, %d needed", ErrNotWitnessed, len(by), len(keys), cp.Size, quorum)
	}
	return cp, out, nil
}
