package audit

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// fixedWitness is a witness key made from a fixed seed, so that committed
// fuzz seeds stay valid.
func fixedWitness(t testing.TB, name string, n byte) (*torchwood.CosignatureSigner, WitnessKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseWitnessKey(s.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// FuzzOpenCosigned reads cosigned checkpoints as an export bundle or a
// trusted file carries them: no panic, and what it accepts is the log's
// checkpoint with cosignature lines that are in the input, by enough of
// the keys.
func FuzzOpenCosigned(f *testing.F) {
	fx := newFixture(f)
	s1, k1 := fixedWitness(f, "witness.test/w1", 11)
	s2, k2 := fixedWitness(f, "witness.test/w2", 12)
	cosigned := bytes.Clone(fx.note)
	body := fx.note[:bytes.LastIndex(fx.note, []byte("\n\n"))+1]
	for _, s := range []*torchwood.CosignatureSigner{s1, s2} {
		signed, err := note.Sign(&note.Note{Text: string(body)}, s)
		if err != nil {
			f.Fatal(err)
		}
		cosigned = append(cosigned, signed[bytes.LastIndex(signed, []byte("\n\n"))+2:]...)
	}
	f.Add(cosigned, 2)
	f.Add(fx.note, 1)
	if *updateCorpus {
		dir := filepath.Join("testdata", "fuzz", "FuzzOpenCosigned")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "seed-cosigned"), []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(cosigned))+")\nint(2)\n"), 0o644)
	}
	keys := []WitnessKey{k1, k2}
	f.Fuzz(func(t *testing.T, b []byte, quorum int) {
		c, cs, err := OpenCosigned(b, fx.vkey, keys, quorum)
		if err != nil {
			return
		}
		if len(cs) < max(quorum, 1) || !bytes.HasPrefix(b, c.Body()) {
			t.Fatalf("OpenCosigned accepted %d cosignatures for quorum %d", len(cs), quorum)
		}
		for _, s := range cs {
			if !bytes.Contains(b, []byte(s.Line)) {
				t.Fatalf("cosignature %q is not in the input", s.Line)
			}
		}
	})
}
