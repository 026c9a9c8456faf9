package report

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/carrel-lib/carrel/internal/audit"
)

// TestWitness is a witness's signing side for the report's tests (also
// the scripted year's, in package report_test): a key made from its name,
// so that every run has the same key, and cosignatures dated by the test's
// clock rather than the wall clock, as a witness on the script's day would
// date them. The format is c2sp.org/tlog-cosignature, which torchwood's
// verifier (audit.VerifyCosignature) checks: a signature made here that
// did not follow it would not count.
type TestWitness struct {
	Name string
	Key  string // the verifier key, as its operator would publish it
	priv ed25519.PrivateKey
	hash uint32
}

// NewTestWitness makes the witness whose key is called name. It panics
// on a name a witness key cannot have: a mistake in the test.
func NewTestWitness(name string) *TestWitness {
	seed := sha256.Sum256([]byte("carrel report test witness " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		panic(fmt.Sprintf("test witness %q: %v", name, err))
	}
	return &TestWitness{Name: name, Key: s.Verifier().String(), priv: priv, hash: s.KeyHash()}
}

// Cosign returns the witness's cosignature line on cp, dated at, as
// litewitness answers add-checkpoint.
func (w *TestWitness) Cosign(cp audit.Checkpoint, at time.Time) (string, error) {
	signed, err := note.Sign(&note.Note{Text: string(cp.Body())}, datedSigner{w, uint64(at.Unix())})
	if err != nil {
		return "", err
	}
	s := string(signed)
	return s[strings.LastIndex(s, "\n\n")+2:], nil
}

// datedSigner signs as tlog-cosignature/v1 does, at a given time.
type datedSigner struct {
	w  *TestWitness
	at uint64
}

func (d datedSigner) Name() string    { return d.w.Name }
func (d datedSigner) KeyHash() uint32 { return d.w.hash }
func (d datedSigner) Sign(msg []byte) ([]byte, error) {
	sig := ed25519.Sign(d.w.priv, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", d.at, msg))
	return append(binary.BigEndian.AppendUint64(nil, d.at), sig...), nil
}
