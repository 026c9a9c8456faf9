package audit

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestProofTextGolden(t *testing.T) {
	h1 := tlog.RecordHash([]byte("a"))
	h2 := tlog.RecordHash([]byte("b"))
	ip := InclusionProof{Seq: 5, Size: 12, Hashes: tlog.RecordProof{h1, h2}}
	want := "carrel audit inclusion v1\nseq 5\nsize 12\n" +
		"hash Aippeebat6pa5MPl5F9+l3ESp+Y1k4INvsHsc4ok+Tw=\n" +
		"hash V+s1YV1H807HFMrN9f10YIpejhAnJOgLJLKHwMJ7ajE=\n"
	if got := string(ip.Text()); got != want {
		t.Errorf("InclusionProof.Text() =\n%s\nwant\n%s", got, want)
	}
	cp := ConsistencyProof{Old: 3, New: 12, Hashes: tlog.TreeProof{h2}}
	want = "carrel audit consistency v1\nold 3\nnew 12\nhash V+s1YV1H807HFMrN9f10YIpejhAnJOgLJLKHwMJ7ajE=\n"
	if got := string(cp.Text()); got != want {
		t.Errorf("ConsistencyProof.Text() =\n%s\nwant\n%s", got, want)
	}
	back, err := ParseInclusionProof(ip.Text())
	if err != nil || back.Seq != 5 || back.Size != 12 || len(back.Hashes) != 2 || back.Hashes[1] != h2 {
		t.Errorf("ParseInclusionProof(Text()) = %+v, %v", back, err)
	}
	cback, err := ParseConsistencyProof(cp.Text())
	if err != nil || cback.Old != 3 || cback.New != 12 || len(cback.Hashes) != 1 {
		t.Errorf("ParseConsistencyProof(Text()) = %+v, %v", cback, err)
	}
}

func TestParseProofRejects(t *testing.T) {
	good := "carrel audit inclusion v1\nseq 5\nsize 12\nhash Aippeebat6pa5MPl5F9+l3ESp+Y1k4INvsHsc4ok+Tw=\n"
	tests := []struct{ name, in, want string }{
		{"empty", "", "newline"},
		{"consistency as inclusion", strings.Replace(good, "inclusion", "consistency", 1), "first line"},
		{"seq outside tree", strings.Replace(good, "seq 5", "seq 12", 1), "not inside"},
		{"seq leading zero", strings.Replace(good, "seq 5", "seq 05", 1), "seq"},
		{"keys swapped", strings.Replace(good, "seq 5\nsize 12", "size 12\nseq 5", 1), "want \"seq N\""},
		{"hash not canonical", strings.Replace(good, "+Tw=", "+Tx=", 1), "not a base64"},
		{"hash short", strings.Replace(good, "Aipp", "", 1), "not a base64"},
		{"no hash prefix", strings.Replace(good, "hash ", "", 1), "want \"hash BASE64\""},
		{"blank line", good + "\n", "want \"hash BASE64\""},
		{"too many", good + strings.Repeat("hash Aippeebat6pa5MPl5F9+l3ESp+Y1k4INvsHsc4ok+Tw=\n", maxProofHashes), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInclusionProof([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseInclusionProof(%q) = %v; want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
	if _, err := ParseConsistencyProof([]byte("carrel audit consistency v1\nold 5\nnew 4\n")); err == nil {
		t.Errorf("ParseConsistencyProof(old > new) = nil error")
	}
}

// proofLog returns a log of 20 entries with checkpoints at sizes 6, 13
// and 20.
func proofLog(t *testing.T) *Log {
	ctx := context.Background()
	l, _ := testLog(t)
	fill(t, l, 5, 0) // and key.created makes 6
	for i := 0; i < 3; i++ {
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			fill(t, l, 7, 0)
		}
	}
	return l
}

func TestVerifyInclusionEveryEntry(t *testing.T) {
	ctx := context.Background()
	l := proofLog(t)
	n, _ := l.Size(ctx)
	for seq := int64(0); seq < n; seq++ {
		p, err := l.Prove(ctx, seq)
		if err != nil {
			t.Fatalf("Prove(%d) = %v", seq, err)
		}
		if p.Checkpoint.Size != n {
			t.Fatalf("Prove(%d) against size %d; want the latest, %d", seq, p.Checkpoint.Size, n)
		}
		if err := VerifyInclusion(p.Entry, p.Inclusion.Text(), p.Checkpoint.Note, l.Verifier()); err != nil {
			t.Errorf("VerifyInclusion(entry %d) = %v", seq, err)
		}
	}
}

// TestCorruptInclusionProofs: every way of bending a genuine proof is
// rejected.
func TestCorruptInclusionProofs(t *testing.T) {
	ctx := context.Background()
	l := proofLog(t)
	vkey := l.Verifier()
	cps := checkpointsOf(t, l)
	p, err := l.ProveAt(ctx, 9, cps[2])
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.ProveAt(ctx, 10, cps[2])
	if err != nil {
		t.Fatal(err)
	}
	_, foreignKey := fixedKey(t, testOrigin, 7)
	with := func(f func(*InclusionProof)) []byte {
		q := p.Inclusion
		q.Hashes = append(tlog.RecordProof(nil), p.Inclusion.Hashes...)
		f(&q)
		return q.Text()
	}
	type input struct {
		name                 string
		entry, proof, cpnote []byte
		key                  string
	}
	cases := []input{
		{"seq+1", p.Entry, with(func(q *InclusionProof) { q.Seq++ }), p.Checkpoint.Note, vkey},
		{"seq-1", p.Entry, with(func(q *InclusionProof) { q.Seq-- }), p.Checkpoint.Note, vkey},
		{"size+1", p.Entry, with(func(q *InclusionProof) { q.Size++ }), p.Checkpoint.Note, vkey},
		{"size-1", p.Entry, with(func(q *InclusionProof) { q.Size-- }), p.Checkpoint.Note, vkey},
		{"older checkpoint", p.Entry, p.Inclusion.Text(), cps[1].Note, vkey},
		{"proof of other entry", p.Entry, other.Inclusion.Text(), p.Checkpoint.Note, vkey},
		{"other entry", other.Entry, p.Inclusion.Text(), p.Checkpoint.Note, vkey},
		{"hash dropped", p.Entry, with(func(q *InclusionProof) { q.Hashes = q.Hashes[1:] }), p.Checkpoint.Note, vkey},
		{"hash added", p.Entry, with(func(q *InclusionProof) { q.Hashes = append(q.Hashes, q.Hashes[0]) }), p.Checkpoint.Note, vkey},
		{"hashes swapped", p.Entry, with(func(q *InclusionProof) { q.Hashes[0], q.Hashes[1] = q.Hashes[1], q.Hashes[0] }), p.Checkpoint.Note, vkey},
		{"foreign key", p.Entry, p.Inclusion.Text(), p.Checkpoint.Note, foreignKey},
		{"entry changed", []byte(strings.Replace(string(p.Entry), "seq 9", "seq 9\nseq 9", 1)), p.Inclusion.Text(), p.Checkpoint.Note, vkey},
	}
	for i := range p.Inclusion.Hashes {
		for _, bit := range []int{0, 7, 255} {
			cases = append(cases, input{"hash changed", p.Entry, with(func(q *InclusionProof) { q.Hashes[i][bit/8] ^= 1 << (bit % 8) }), p.Checkpoint.Note, vkey})
		}
	}
	if err := VerifyInclusion(p.Entry, p.Inclusion.Text(), p.Checkpoint.Note, vkey); err != nil {
		t.Fatalf("VerifyInclusion(genuine) = %v", err)
	}
	for _, c := range cases {
		if err := VerifyInclusion(c.entry, c.proof, c.cpnote, c.key); err == nil {
			t.Errorf("VerifyInclusion(%s) = nil; want it rejected", c.name)
		}
	}
}

func TestCorruptConsistencyProofs(t *testing.T) {
	ctx := context.Background()
	l := proofLog(t)
	vkey := l.Verifier()
	cps := checkpointsOf(t, l) // sizes 1 (the new log), 6, 13, 20
	old, latest := cps[1], cps[3]
	p, got, err := l.ProveConsistency(ctx, old.Size)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != latest.Size {
		t.Fatalf("ProveConsistency against size %d; want %d", got.Size, latest.Size)
	}
	if err := VerifyConsistency(p.Text(), old.Note, latest.Note, vkey); err != nil {
		t.Fatalf("VerifyConsistency(genuine) = %v", err)
	}
	// A log of another PC with the same number of entries.
	foreign, _ := testLog(t)
	fill(t, foreign, int(latest.Size-1), 0)
	fcp, _ := foreign.Checkpoint(ctx)
	renamedSigner, renamedKey := fixedKey(t, testOrigin, 7)
	forged, err := Checkpoint{Origin: testOrigin, Size: old.Size, Root: tlog.RecordHash([]byte("x"))}.sign(renamedSigner)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*ConsistencyProof)) []byte {
		q := p
		q.Hashes = append(tlog.TreeProof(nil), p.Hashes...)
		f(&q)
		return q.Text()
	}
	type input struct {
		name              string
		proof, older, nwr []byte
		key               string
	}
	cases := []input{
		{"old+1", with(func(q *ConsistencyProof) { q.Old++ }), old.Note, latest.Note, vkey},
		{"old-1", with(func(q *ConsistencyProof) { q.Old-- }), old.Note, latest.Note, vkey},
		{"new+1", with(func(q *ConsistencyProof) { q.New++ }), old.Note, latest.Note, vkey},
		{"new-1", with(func(q *ConsistencyProof) { q.New-- }), old.Note, latest.Note, vkey},
		{"checkpoints swapped", p.Text(), latest.Note, old.Note, vkey},
		{"middle checkpoint", p.Text(), cps[2].Note, latest.Note, vkey},
		{"hash dropped", with(func(q *ConsistencyProof) { q.Hashes = q.Hashes[1:] }), old.Note, latest.Note, vkey},
		{"hash added", with(func(q *ConsistencyProof) { q.Hashes = append(q.Hashes, q.Hashes[0]) }), old.Note, latest.Note, vkey},
		{"other log", p.Text(), old.Note, fcp.Note, vkey},
		{"forged older", p.Text(), forged.Note, latest.Note, vkey},
		{"forged older, its key", p.Text(), forged.Note, latest.Note, renamedKey},
	}
	for i := range p.Hashes {
		cases = append(cases, input{"hash changed", with(func(q *ConsistencyProof) { q.Hashes[i][i%32] ^= 0x10 }), old.Note, latest.Note, vkey})
	}
	for _, c := range cases {
		if err := VerifyConsistency(c.proof, c.older, c.nwr, c.key); err == nil {
			t.Errorf("VerifyConsistency(%s) = nil; want it rejected", c.name)
		}
	}
}

// checkpointsOf returns every stored checkpoint, oldest first.
func checkpointsOf(t *testing.T, l *Log) []Checkpoint {
	t.Helper()
	rows, err := l.r.Query(`SELECT note FROM checkpoints ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var msg string
		rows.Scan(&msg)
		c, err := OpenCheckpoint([]byte(msg), l.Verifier())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestParseSigningKeyAnyKey: the verifier derived from a signer key equals
// the one note.GenerateKey made with it, for keys whose base64 holds '+'.
func TestParseSigningKeyAnyKey(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	plus := 0
	for i := 0; i < 64; i++ {
		skey, vkey, err := note.GenerateKey(r, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(skey, "+") > 4 {
			plus++
		}
		k, err := parseSigningKey(skey)
		if err != nil || k.verifier != vkey {
			t.Fatalf("parseSigningKey(%q) = %q, %v; want %q", skey, k.verifier, err, vkey)
		}
	}
	if plus == 0 {
		t.Fatalf("no generated key had '+' in its base64; the test proves nothing")
	}
}
