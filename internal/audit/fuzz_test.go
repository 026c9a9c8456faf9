package audit

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

// fixture is a small log built in memory with a fixed key, so that its
// entries, proofs and checkpoint are the same on every run and can serve as
// committed fuzz seeds.
type fixture struct {
	entries [][]byte
	proofs  [][]byte // inclusion proof of entries[i]
	note    []byte   // checkpoint of all entries
	vkey    string
	cons    []byte // consistency proof from size 3 to all
	old     []byte // checkpoint of size 3
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	signer, vkey := fixedKey(t, testOrigin, 1)
	var fx fixture
	fx.vkey = vkey
	var tree []tlog.Hash
	hr := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = tree[x]
		}
		return out, nil
	})
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 7; i++ {
		// A log written by an older carrel and then upgraded: version 1
		// entries, then version 2 ones recording a checkpoint.
		e := entryFromEvent(int64(i), int64(i/2), at.Add(time.Duration(i)*time.Second), sampleEvent(i))
		if i < 3 {
			e.Version, e.Checkpoint = 1, 0
		}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), b, hr)
		if err != nil {
			t.Fatal(err)
		}
		tree = append(tree, hs...)
		fx.entries = append(fx.entries, b)
	}
	n := int64(len(fx.entries))
	sign := func(size int64) []byte {
		root, err := tlog.TreeHash(size, hr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Checkpoint{Origin: testOrigin, Size: size, Root: root}.sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return c.Note
	}
	fx.note, fx.old = sign(n), sign(3)
	for i := int64(0); i < n; i++ {
		p, err := tlog.ProveRecord(n, i, hr)
		if err != nil {
			t.Fatal(err)
		}
		fx.proofs = append(fx.proofs, InclusionProof{Seq: i, Size: n, Hashes: p}.Text())
	}
	tp, err := tlog.ProveTree(n, 3, hr)
	if err != nil {
		t.Fatal(err)
	}
	fx.cons = ConsistencyProof{Old: 3, New: n, Hashes: tp}.Text()
	return fx
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(goldenEntryBytes))
	f.Add([]byte(goldenEntryV2Bytes))
	for _, e := range newFixture(f).entries {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("ParseEntry(%q) accepted a form Encode does not write: %q, %v", b, again, err)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	fx := newFixture(f)
	f.Add([]byte(goldenNote))
	f.Add(fx.note)
	f.Add(fx.old)
	signer, _ := fixedKey(f, testOrigin, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := OpenCheckpoint(b, fx.vkey)
		if err != nil {
			return
		}
		// Ed25519 is deterministic: the only signature line the key makes
		// over this body is the one signing it again makes.
		resigned, err := Checkpoint{Origin: c.Origin, Size: c.Size, Root: c.Root}.sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		line := resigned.Note[bytes.LastIndex(resigned.Note, []byte("\n\n"))+2:]
		if !bytes.HasPrefix(b, c.Body()) || !bytes.Contains(b, line) || !bytes.Equal(c.Note, b) {
			t.Fatalf("OpenCheckpoint(%q) = %+v; not the note the key signed", b, c)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	fx := newFixture(f)
	for _, p := range fx.proofs {
		f.Add(p)
	}
	f.Add(fx.cons)
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseInclusionProof(b); err == nil && !bytes.Equal(p.Text(), b) {
			t.Fatalf("ParseInclusionProof(%q) round-trips to %q", b, p.Text())
		}
		if p, err := ParseConsistencyProof(b); err == nil && !bytes.Equal(p.Text(), b) {
			t.Fatalf("ParseConsistencyProof(%q) round-trips to %q", b, p.Text())
		}
	})
}

// FuzzVerifyInclusion: whatever the fuzzer changes in a genuine entry,
// proof or checkpoint, VerifyInclusion accepts only genuine entries with
// their own proofs.
func FuzzVerifyInclusion(f *testing.F) {
	fx := newFixture(f)
	for i := range fx.entries {
		f.Add(fx.entries[i], fx.proofs[i], fx.note)
	}
	f.Add(fx.entries[0], fx.proofs[1], fx.note)
	f.Fuzz(func(t *testing.T, entry, proof, note []byte) {
		if err := VerifyInclusion(entry, proof, note, fx.vkey); err != nil {
			return
		}
		for i := range fx.entries {
			if bytes.Equal(entry, fx.entries[i]) && bytes.Equal(proof, fx.proofs[i]) {
				return
			}
		}
		t.Fatalf("VerifyInclusion accepted entry %q with proof %q", entry, proof)
	})
}

// TestFuzzSeedsCommitted: every fuzz target has a committed seed corpus
// (written with -update-corpus) that still parses as fuzz input.
func TestFuzzSeedsCommitted(t *testing.T) {
	fx := newFixture(t)
	seeds := map[string][][][]byte{
		"FuzzParseEntry":      {{[]byte(goldenEntryBytes)}, {fx.entries[1]}, {fx.entries[2]}, {[]byte(goldenEntryV2Bytes)}, {fx.entries[4]}},
		"FuzzOpenCheckpoint":  {{[]byte(goldenNote)}, {fx.note}, {fx.old}},
		"FuzzParseProof":      {{fx.proofs[3]}, {fx.cons}},
		"FuzzVerifyInclusion": {{fx.entries[4], fx.proofs[4], fx.note}, {fx.entries[0], fx.proofs[1], fx.note}},
	}
	for target, inputs := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			os.MkdirAll(dir, 0o755)
			for i, in := range inputs {
				var b bytes.Buffer
				b.WriteString("go test fuzz v1\n")
				for _, arg := range in {
					fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(arg)))
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil || len(files) == 0 {
			t.Errorf("no seed corpus in %s (run go test -run TestFuzzSeedsCommitted -update-corpus)", dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
				t.Errorf("%s is not a fuzz corpus file", f)
			}
		}
	}
}
