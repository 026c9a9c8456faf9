package audit

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProof shows that the entry with sequence number Seq is leaf Seq
// of the tree of size Size (RFC 6962 audit path, as tlog.ProveRecord makes
// it).
//
// Its text form, pinned by tests, is
//
//	carrel audit inclusion v1\n
//	seq <decimal>\n
//	size <decimal>\n
//	hash <base64>\n     one line per proof hash, in tlog's order
//
// What may never change: that form. Export bundles carry it next to the
// entry and a checkpoint, and VerifyInclusion must read old bundles.
type InclusionProof struct {
	Seq    int64
	Size   int64
	Hashes tlog.RecordProof
}

// ConsistencyProof shows that the tree of size New extends the tree of size
// Old (RFC 6962 consistency proof, as tlog.ProveTree makes it). Its text
// form follows the same rules as InclusionProof's:
//
//	carrel audit consistency v1\n
//	old <decimal>\n
//	new <decimal>\n
//	hash <base64>\n
//
// What may never change: that form.
type ConsistencyProof struct {
	Old    int64
	New    int64
	Hashes tlog.TreeProof
}

const (
	inclusionMagic   = "carrel audit inclusion v1"
	consistencyMagic = "carrel audit consistency v1"
	// maxProofHashes is more than a tree of 2^63 entries needs.
	maxProofHashes = 130
)

// Text returns the proof's text form.
func (p InclusionProof) Text() []byte {
	return proofText(inclusionMagic, "seq", p.Seq, "size", p.Size, p.Hashes)
}

// Text returns the proof's text form.
func (p ConsistencyProof) Text() []byte {
	return proofText(consistencyMagic, "old", p.Old, "new", p.New, p.Hashes)
}

// ParseInclusionProof reads the text form of an inclusion proof.
func ParseInclusionProof(b []byte) (InclusionProof, error) {
	seq, size, hs, err := parseProofText(b, inclusionMagic, "seq", "size")
	if err == nil && seq >= size {
		err = fmt.Errorf("inclusion proof: seq %d is not inside a tree of size %d", seq, size)
	}
	if err != nil {
		return InclusionProof{}, err
	}
	return InclusionProof{Seq: seq, Size: size, Hashes: hs}, nil
}

// ParseConsistencyProof reads the text form of a consistency proof.
func ParseConsistencyProof(b []byte) (ConsistencyProof, error) {
	old, nw, hs, err := parseProofText(b, consistencyMagic, "old", "new")
	if err == nil && old > nw {
		err = fmt.Errorf("consistency proof: old size %d is larger than new size %d", old, nw)
	}
	if err != nil {
		return ConsistencyProof{}, err
	}
	return ConsistencyProof{Old: old, New: nw, Hashes: hs}, nil
}

func proofText(magic, k1 string, v1 int64, k2 string, v2 int64, hs []tlog.Hash) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s %d\n%s %d\n", magic, k1, v1, k2, v2)
	for _, h := range hs {
		fmt.Fprintf(&b, "hash %s\n", h)
	}
	return b.Bytes()
}

func parseProofText(b []byte, magic, k1, k2 string) (v1, v2 int64, hs []tlog.Hash, err error) {
	what := strings.TrimPrefix(strings.TrimSuffix(magic, " v1"), "carrel audit ") + " proof"
	if len(b) > 64+maxProofHashes*50 {
		return 0, 0, nil, fmt.Errorf("%s: too long", what)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return 0, 0, nil, fmt.Errorf("%s: does not end with a newline", what)
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if lines[0] != magic {
		return 0, 0, nil, fmt.Errorf("%s: first line is %q, want %q", what, firstLine(b), magic)
	}
	if len(lines) < 3 {
		return 0, 0, nil, fmt.Errorf("%s: want %s and %s lines", what, k1, k2)
	}
	num := func(line, key string) (int64, error) {
		v, ok := strings.CutPrefix(line, key+" ")
		if !ok {
			return 0, fmt.Errorf("%s: want %q, got %q", what, key+" N", line)
		}
		n, err := parseCount(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", what, key, err)
		}
		return n, nil
	}
	if v1, err = num(lines[1], k1); err != nil {
		return 0, 0, nil, err
	}
	if v2, err = num(lines[2], k2); err != nil {
		return 0, 0, nil, err
	}
	if len(lines)-3 > maxProofHashes {
		return 0, 0, nil, fmt.Errorf("%s: more than %d hashes", what, maxProofHashes)
	}
	for i, line := range lines[3:] {
		v, ok := strings.CutPrefix(line, "hash ")
		if !ok {
			return 0, 0, nil, fmt.Errorf("%s line %d: want \"hash BASE64\"", what, i+4)
		}
		h, err := parseHash(v)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("%s line %d: %w", what, i+4, err)
		}
		hs = append(hs, h)
	}
	return v1, v2, hs, nil
}

// VerifyInclusion checks, without any access to the log, that entry (the v1
// encoding of an entry) is in the tree of the signed checkpoint, using
// proof (the text of an InclusionProof) and the log's verifier key (as
// printed by `carrel audit key`). An export bundle's verifier calls it for
// every audit entry the bundle carries.
func VerifyInclusion(entry, proof, checkpoint []byte, verifierKey string) error {
	e, err := ParseEntry(entry)
	if err != nil {
		return err
	}
	p, err := ParseInclusionProof(proof)
	if err != nil {
		return err
	}
	c, err := OpenCheckpoint(checkpoint, verifierKey)
	if err != nil {
		return err
	}
	if p.Seq != e.Seq {
		return fmt.Errorf("inclusion proof is for entry %d, not entry %d", p.Seq, e.Seq)
	}
	if p.Size != c.Size {
		return fmt.Errorf("inclusion proof is for a tree of size %d, the checkpoint has size %d", p.Size, c.Size)
	}
	if err := tlog.CheckRecord(p.Hashes, c.Size, c.Root, p.Seq, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("entry %d is not in the checkpoint's tree (size %d): %w", e.Seq, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks, without any access to the log, that the tree
// of the signed checkpoint newer extends the tree of the signed checkpoint
// older: nothing that older covered was changed or removed.
func VerifyConsistency(proof, older, newer []byte, verifierKey string) error {
	p, err := ParseConsistencyProof(proof)
	if err != nil {
		return err
	}
	o, err := OpenCheckpoint(older, verifierKey)
	if err != nil {
		return fmt.Errorf("older %w", err)
	}
	n, err := OpenCheckpoint(newer, verifierKey)
	if err != nil {
		return fmt.Errorf("newer %w", err)
	}
	return checkConsistency(p, o, n)
}

func checkConsistency(p ConsistencyProof, o, n Checkpoint) error {
	if o.Origin != n.Origin {
		return fmt.Errorf("checkpoints are of different logs (%q and %q)", o.Origin, n.Origin)
	}
	if p.Old != o.Size || p.New != n.Size {
		return fmt.Errorf("consistency proof is for sizes %d and %d, the checkpoints have %d and %d", p.Old, p.New, o.Size, n.Size)
	}
	if o.Size == 0 {
		return fmt.Errorf("the older checkpoint is of an empty tree: nothing to prove")
	}
	if err := tlog.CheckTree(p.Hashes, n.Size, n.Root, o.Size, o.Root); err != nil {
		return fmt.Errorf("the tree of size %d does not extend the tree of size %d: %w", n.Size, o.Size, err)
	}
	return nil
}
