package export

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/carrel-lib/carrel/internal/audit"
)

// The bundle's signature is the PC's audit log vouching for the whole bag:
// the export.end entry, which records the SHA-256 of tagmanifest-sha256.txt
// (and so of every manifest, every payload file and bag-info.txt), its
// inclusion proof against a checkpoint signed with the PC's audit key, and
// a consistency proof that this checkpoint extends the one the bundle's
// other audit entries were proved against (data/audit/checkpoint). A bag
// edited after the export, its manifests rewritten, no longer has the tag
// manifest export.end recorded.
//
// The four files are tag files in signature/. They cannot be listed in the
// tag manifests they vouch for, and are not: RFC 8493 lets a bag hold tag
// files that no tag manifest lists, and they verify themselves. They are
// written after export.end is recorded, which is after the bag was moved
// into place, through a temporary folder renamed to signature/: a bundle
// has all four or none, and one without them is unfinished (ErrUnfinished).
const (
	signatureDir      = "signature"
	sigEntryFile      = signatureDir + "/export-end.entry"
	sigProofFile      = signatureDir + "/export-end.proof"
	sigCheckpointFile = signatureDir + "/checkpoint"
	sigConsistency    = signatureDir + "/consistency"
)

var signatureFiles = []string{sigEntryFile, sigProofFile, sigCheckpointFile, sigConsistency}

// signatureTemp is the prefix of the temporary folder a signature is
// written into; Clean removes one a kill left.
const signatureTemp = ".signature.partial-"

// writeSignature writes the signature of the bundle in dir: the export.end
// entry endSeq proved against the latest checkpoint (signed now when it
// does not cover the entry yet), and the consistency of that checkpoint
// with the one of size auditSize.
func writeSignature(ctx context.Context, log *audit.Log, dir string, endSeq, auditSize int64) error {
	if _, err := log.Checkpoint(ctx); err != nil {
		return fmt.Errorf("signing a checkpoint after export.end: %w", err)
	}
	cons, cp, err := log.ProveConsistency(ctx, auditSize)
	if err != nil {
		return err
	}
	p, err := log.ProveAt(ctx, endSeq, cp)
	if err != nil {
		return err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := filepath.Join(dir, signatureTemp+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("writing the signature: %w", err)
	}
	files := map[string][]byte{sigEntryFile: p.Entry, sigProofFile: p.Inclusion.Text(),
		sigCheckpointFile: cp.Note, sigConsistency: cons.Text()}
	for _, name := range signatureFiles {
		if err := writeSynced(filepath.Join(tmp, filepath.Base(name)), files[name]); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("writing the signature: %w", err)
		}
	}
	if err := testHookSignature(); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	err = syncDir(tmp)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, signatureDir))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("writing the signature: %w", err)
	}
	return nil
}

// writeSynced writes a new file and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
	return err
}

// signed is what checkSignature learned.
type signed struct {
	endSeq     int64
	checkpoint audit.Checkpoint
}

// hasSignature says whether the bag has its signature, and refuses a
// partial one or anything else in signature/.
func hasSignature(bag *Bag) (bool, error) {
	n := 0
	for p := range bag.Files {
		rest, ok := strings.CutPrefix(p, signatureDir+"/")
		if !ok {
			continue
		}
		known := false
		for _, f := range signatureFiles {
			known = known || f == p
		}
		if !known || strings.Contains(rest, "/") {
			return false, bad(p, "not a file a carrel export writes")
		}
		n++
	}
	switch {
	case n == 0:
		return false, nil
	case n < len(signatureFiles):
		for _, f := range signatureFiles {
			if _, ok := bag.Files[f]; !ok {
				return false, bad(f, "missing: the signature is incomplete")
			}
		}
	}
	return true, nil
}

// checkSignature checks the bundle's signature: the export.end entry is in
// the log of the checkpoint in signature/ (signed with the bundle's
// verifier key), that checkpoint extends data/audit/checkpoint, and the
// entry names this order, this tag manifest and this payload. It runs
// after every digest was checked.
func checkSignature(fsys fs.FS, bag *Bag, rep *Report) (*signed, error) {
	read := func(name string) ([]byte, error) {
		b, err := readSmall(fsys, name, maxInfoFile)
		if err != nil {
			return nil, bad(name, "%v", err)
		}
		return b, nil
	}
	files := map[string][]byte{}
	for _, name := range append([]string{verifierKeyFile, checkpointFile}, signatureFiles...) {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	key, err := verifierKey(files[verifierKeyFile])
	if err != nil {
		return nil, err
	}
	cp, err := audit.OpenCheckpoint(files[sigCheckpointFile], key)
	if err != nil {
		return nil, bad(sigCheckpointFile, "not a checkpoint signed by the key in %s: %v", verifierKeyFile, err)
	}
	if err := audit.VerifyInclusion(files[sigEntryFile], files[sigProofFile], files[sigCheckpointFile], key); err != nil {
		return nil, bad(sigEntryFile, "its inclusion proof does not verify against %s: %v", sigCheckpointFile, err)
	}
	e, err := audit.ParseEntry(files[sigEntryFile])
	if err != nil {
		return nil, bad(sigEntryFile, "%v", err)
	}
	if e.Kind != audit.ExportEnd {
		return nil, bad(sigEntryFile, "is a %s entry, not export.end", e.Kind)
	}
	tag, err := readSmall(fsys, "tagmanifest-sha256.txt", maxTagFile)
	if err != nil {
		return nil, bad("tagmanifest-sha256.txt", "%v", err)
	}
	tagSum := sha256.Sum256(tag)
	order, _, _ := lookup(bag.Info, "External-Identifier")
	orderSum := sha256.Sum256([]byte(order))
	want := []struct{ key, value, what string }{
		{"tagmanifest_sha256", hex.EncodeToString(tagSum[:]), "the SHA-256 of tagmanifest-sha256.txt"},
		{"order_sha256", hex.EncodeToString(orderSum[:]), "the SHA-256 of the order in bag-info.txt"},
		{"files", strconv.Itoa(rep.Files), "the number of payload files"},
		{"bytes", strconv.FormatInt(rep.Bytes, 10), "the payload's size in bytes"},
	}
	for _, w := range want {
		if got, _ := e.Value(w.key); got != w.value {
			return nil, bad(sigEntryFile, "the export.end entry the PC's audit key signed records %s %s, but %s is %s: the bag was changed after the export",
				w.key, got, w.what, w.value)
		}
	}
	// The other audit entries are proved against data/audit/checkpoint:
	// the log that holds export.end must be the one that holds them.
	if err := audit.VerifyConsistency(files[sigConsistency], files[checkpointFile], files[sigCheckpointFile], key); err != nil {
		return nil, bad(sigConsistency, "does not show that %s extends %s: %v", sigCheckpointFile, checkpointFile, err)
	}
	rep.TagSHA256 = hex.EncodeToString(tagSum[:])
	rep.EndSeq, rep.SignedBy = e.Seq, cp.String()
	return &signed{endSeq: e.Seq, checkpoint: cp}, nil
}

// verifierKey reads data/audit/verifier-key: one key on one line.
func verifierKey(b []byte) (string, error) {
	key := string(bytes.TrimSuffix(b, []byte("\n")))
	if strings.ContainsAny(key, "\r\n\t ") || key == "" {
		return "", bad(verifierKeyFile, "not one verifier key on one line")
	}
	return key, nil
}

// testHookSignature lets tests fail an export while it writes its
// signature.
var testHookSignature = func() error { return nil }
