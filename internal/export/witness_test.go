package export

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/carrel-lib/carrel/internal/audit"
)

// cosigner is a witness's signing side, made with torchwood's cosignature
// signer as litewitness makes its own.
type cosigner struct {
	s   *torchwood.CosignatureSigner
	key string
}

func newCosigner(t *testing.T, name string) cosigner {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	return cosigner{s: s, key: s.Verifier().String()}
}

func (c cosigner) cosign(t *testing.T, cp audit.Checkpoint) string {
	t.Helper()
	signed, err := note.Sign(&note.Note{Text: string(cp.Body())}, c.s)
	if err != nil {
		t.Fatal(err)
	}
	s := string(signed)
	return s[strings.LastIndex(s, "\n\n")+2:]
}

// witnessedFixture is a PC whose config names two witnesses with a quorum
// of two; when cosign is set both cosigned a checkpoint before more
// entries were recorded.
func witnessedFixture(t *testing.T, cosign bool) (*fixture, cosigner, cosigner) {
	t.Helper()
	w1, w2 := newCosigner(t, "witness.test/w1"), newCosigner(t, "witness.test/w2")
	f := newFixture(t, fmt.Sprintf("[audit]\nwitness_quorum = 2\nwitnesses = [{name = \"w1\", url = \"https://w1.test\", key = %q}, {name = \"w2\", url = \"https://w2.test\", key = %q}]\n",
		w1.key, w2.key)+fixtureCases)
	f.set(at("09:00"))
	f.book("pc-01", "B-1", "10:30", "11:00", "")
	if cosign {
		ctx := context.Background()
		cp, err := f.log.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range map[string]cosigner{"w1": w1, "w2": w2} {
			k, err := audit.ParseWitnessKey(w.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.log.AddCosignatures(ctx, name, k, cp, []string{w.cosign(t, cp)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.set(at("11:30"))
	f.record(audit.ServiceStop, audit.Token("reason", "signal"))
	f.book("pc-01", "B-2", "11:30", "11:45", "")
	f.set(at("15:00"))
	return f, w1, w2
}

func TestExportCarriesCosignedCheckpoint(t *testing.T) {
	f, w1, w2 := witnessedFixture(t, true)
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := f.export(f.options(dir)); err != nil {
		t.Fatal(err)
	}
	files := readTree(t, dir)
	cosigned := string(files[cosignedFile])
	if !strings.Contains(cosigned, "— witness.test/w1 ") || !strings.Contains(cosigned, "— witness.test/w2 ") {
		t.Fatalf("%s:\n%s", cosignedFile, cosigned)
	}
	if want := "quorum 2\n" + w1.key + "\n" + w2.key + "\n"; string(files[witnessesFile]) != want {
		t.Errorf("%s = %q; want %q", witnessesFile, files[witnessesFile], want)
	}
	rep, err := VerifyDir(dir, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Witnessed, "cosigned by witness.test/w1, witness.test/w2") || !strings.HasPrefix(rep.WitnessKeysFrom, "the bundle") {
		t.Errorf("Witnessed = %q from %q", rep.Witnessed, rep.WitnessKeysFrom)
	}
	// With the operators' keys: both given, quorum 2.
	if rep, err := VerifyDir(dir, VerifyOptions{WitnessKeys: []string{w1.key, w2.key}, WitnessQuorum: 2}); err != nil || rep.WitnessKeysFrom != "given" {
		t.Fatalf("VerifyDir with the witnesses' keys = %v, %v", rep, err)
	}
	// A key the bundle's witnesses do not have: not witnessed by it.
	other := newCosigner(t, "witness.test/w3")
	if _, err := VerifyDir(dir, VerifyOptions{WitnessKeys: []string{other.key}, WitnessQuorum: 1}); !errors.Is(err, ErrBadBag) ||
		!strings.Contains(err.Error(), "0 of the 1 witness keys cosigned") {
		t.Errorf("VerifyDir with another witness's key = %v; want not witnessed", err)
	}
}

// A bag whose cosigned checkpoint, witness list or proof was changed, and
// the manifests made again to match, fails on the witnesses' files even
// without the signature in the way.
func TestExportWitnessTampered(t *testing.T) {
	f, _, _ := witnessedFixture(t, true)
	clean := filepath.Join(t.TempDir(), "bundle")
	if _, err := f.export(f.options(clean)); err != nil {
		t.Fatal(err)
	}
	third := newCosigner(t, "witness.test/w3")
	tests := []struct {
		name   string
		change func(dir string)
		want   string
	}{
		{"cosignature byte", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(cosignedFile)))
			s := string(b)
			i := strings.LastIndex(s, "— witness.test/w2 ") + len("— witness.test/w2 ") + 20
			write(t, dir, cosignedFile, s[:i]+string("AB"[boolIndex(s[i] == 'A')])+s[i+1:])
		}, "does not verify"},
		{"a cosignature removed", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(cosignedFile)))
			lines := strings.SplitAfter(string(b), "\n")
			write(t, dir, cosignedFile, strings.Join(lines[:len(lines)-2], ""))
		}, "1 of the 2 witness keys cosigned"},
		{"witness list swapped", func(dir string) {
			write(t, dir, witnessesFile, "quorum 1\n"+third.key+"\n")
		}, "0 of the 1 witness keys cosigned"},
		{"quorum lowered to nothing", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(witnessesFile)))
			write(t, dir, witnessesFile, strings.Replace(string(b), "quorum 2", "quorum 0", 1))
		}, "quorum N"},
		{"proof removed", func(dir string) {
			os.Remove(filepath.Join(dir, filepath.FromSlash(witnessedProofFile)))
		}, "incomplete"},
		{"proof changed", func(dir string) {
			flipByte(t, dir, witnessedProofFile, -3)
		}, witnessedProofFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			copyTree(t, clean, dir)
			tc.change(dir)
			remanifest(t, dir)
			_, err := verifyUnsigned(t, dir, VerifyOptions{})
			if !errors.Is(err, ErrBadBag) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("verify after %s = %v; want an error naming %q", tc.name, err, tc.want)
			}
		})
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A PC whose witnesses never cosigned: the bundle carries their keys and
// no cosigned checkpoint; it verifies, says nothing is witnessed, and
// fails when the verifier asks for witnesses.
func TestExportNotYetWitnessed(t *testing.T) {
	f, w1, _ := witnessedFixture(t, false)
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := f.export(f.options(dir)); err != nil {
		t.Fatal(err)
	}
	files := readTree(t, dir)
	if _, ok := files[cosignedFile]; ok {
		t.Fatalf("the bundle carries %s though nothing was cosigned", cosignedFile)
	}
	rep, err := VerifyDir(dir, VerifyOptions{})
	if err != nil || rep.Witnessed != "" {
		t.Fatalf("VerifyDir = %+v, %v; want a bundle that verifies, not witnessed", rep, err)
	}
	if _, err := VerifyDir(dir, VerifyOptions{WitnessKeys: []string{w1.key}, WitnessQuorum: 1}); !errors.Is(err, ErrBadBag) || !strings.Contains(err.Error(), "nothing in it is witnessed") {
		t.Errorf("VerifyDir --witness-key = %v; want not witnessed", err)
	}
}

// FuzzParseWitnesses reads a bundle's data/audit/witnesses: no panic, and
// what it accepts has a quorum between 1 and the number of keys.
func FuzzParseWitnesses(f *testing.F) {
	f.Add([]byte("quorum 1\nwitness.test/w1+1a2b3c4d+BAAA\n"))
	f.Add([]byte("quorum 2\na\nb\n"))
	f.Add([]byte("quorum 01\na\n"))
	f.Add([]byte("quorum 3\na\nb\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, keys, err := parseWitnesses(b)
		if err != nil {
			return
		}
		if q < 1 || q > len(keys) || len(keys) > maxWitnessesInBag {
			t.Fatalf("parseWitnesses(%q) = quorum %d of %d keys", b, q, len(keys))
		}
	})
}
