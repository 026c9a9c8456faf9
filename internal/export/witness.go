package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Witnesses in the bundle. When the PC's config names witnesses, the
// export adds
//
//	data/audit/witnesses           "quorum N" and one witness verifier key a line
//	data/audit/checkpoint.cosigned the latest checkpoint N of them cosigned:
//	                               the log's note with their cosignature lines
//	data/audit/witnessed.proof     the consistency proof from it to
//	                               data/audit/checkpoint
//
// so that whoever verifies the bundle can tell that the entries it proves,
// up to the cosigned size, are the ones the witnesses saw: a log rewritten
// on the PC before the export would not extend what they cosigned. The
// keys in the bundle come from the PC's config; `carrel export verify
// --witness-key` checks with keys from the witnesses' operators instead.
const (
	witnessesFile       = "data/audit/witnesses"
	cosignedFile        = "data/audit/checkpoint.cosigned"
	witnessedProofFile  = "data/audit/witnessed.proof"
	maxWitnessesInBag   = 64
	witnessesQuorumWord = "quorum "
)

// writeWitnessed writes the witnesses' files for the export checkpoint cp.
// A PC whose witnesses never cosigned yet gets the keys and no cosigned
// checkpoint; verify then says the bundle is not witnessed.
func (x *exporter) writeWitnessed(ctx context.Context, cp audit.Checkpoint) error {
	ws := x.cfg.Audit.Witnesses
	if len(ws) == 0 {
		return nil
	}
	var keys []audit.WitnessKey
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", witnessesQuorumWord, x.cfg.Audit.WitnessQuorum)
	for _, w := range ws {
		k, err := audit.ParseWitnessKey(w.Key)
		if err != nil {
			return fmt.Errorf("audit.witnesses: %w", err)
		}
		keys = append(keys, k)
		b.WriteString(k.Text + "\n")
	}
	if _, err := x.bag.writeFile(witnessesFile, b.Bytes()); err != nil {
		return err
	}
	cc, err := x.log.LatestCosigned(ctx, keys, x.cfg.Audit.WitnessQuorum)
	if errors.Is(err, audit.ErrNotWitnessed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the witnesses' cosignatures: %w", err)
	}
	if cc.Checkpoint.Size > cp.Size {
		return fmt.Errorf("the witnesses cosigned a checkpoint of size %d, beyond the export's %d", cc.Checkpoint.Size, cp.Size)
	}
	proof, err := x.log.ProveConsistencyAt(ctx, cc.Checkpoint.Size, cp)
	if err != nil {
		return err
	}
	if _, err := x.bag.writeFile(cosignedFile, cc.Note()); err != nil {
		return err
	}
	_, err = x.bag.writeFile(witnessedProofFile, proof.Text())
	return err
}

// isWitnessFile reports whether p is one of the witnesses' files.
func isWitnessFile(p string) bool {
	return p == witnessesFile || p == cosignedFile || p == witnessedProofFile
}

// checkWitnessed checks the witnesses' files of a bundle: the cosigned
// checkpoint is the log's (logKey), cosigned by the quorum of the witness
// keys (the bundle's, or opts.WitnessKeys), and the bundle's checkpoint
// (cp, signed) extends it. Without the files there is nothing to check,
// unless opts.WitnessKeys were given: then the bundle must be witnessed.
func checkWitnessed(fsys fs.FS, bag *Bag, cp []byte, logKey string, opts VerifyOptions, rep *Report) error {
	_, hasKeys := bag.Files[witnessesFile]
	_, hasCosigned := bag.Files[cosignedFile]
	_, hasProof := bag.Files[witnessedProofFile]
	if hasCosigned != hasProof || hasCosigned && !hasKeys {
		return bad(cosignedFile, "the witnesses' files are incomplete (%s, %s and %s go together)", witnessesFile, cosignedFile, witnessedProofFile)
	}
	var keys []string
	quorum := 0
	if hasKeys {
		b, err := readSmall(fsys, witnessesFile, maxInfoFile)
		if err != nil {
			return bad(witnessesFile, "%v", err)
		}
		if quorum, keys, err = parseWitnesses(b); err != nil {
			return bad(witnessesFile, "%v", err)
		}
		rep.WitnessKeysFrom = "the bundle (the PC's config)"
	}
	if len(opts.WitnessKeys) > 0 {
		keys, quorum = opts.WitnessKeys, max(opts.WitnessQuorum, 1)
		rep.WitnessKeysFrom = "given"
	}
	if !hasCosigned {
		if len(opts.WitnessKeys) > 0 {
			return bad(cosignedFile, "missing: the bundle carries no checkpoint its PC's witnesses cosigned, so nothing in it is witnessed")
		}
		return nil
	}
	wks, err := audit.ParseWitnessKeys(keys)
	if err != nil {
		return bad(witnessesFile, "%v", err)
	}
	note, err := readSmall(fsys, cosignedFile, maxInfoFile)
	if err != nil {
		return bad(cosignedFile, "%v", err)
	}
	c, cs, err := audit.OpenCosigned(note, logKey, wks, quorum)
	if err != nil {
		return bad(cosignedFile, "%v", err)
	}
	proof, err := readSmall(fsys, witnessedProofFile, maxInfoFile)
	if err != nil {
		return bad(witnessedProofFile, "%v", err)
	}
	if err := audit.VerifyConsistency(proof, note, cp, logKey); err != nil {
		return bad(witnessedProofFile, "does not show that %s extends %s: %v", checkpointFile, cosignedFile, err)
	}
	var names []string
	for _, s := range cs {
		names = append(names, s.Witness)
	}
	rep.Witnessed = fmt.Sprintf("%s size %d cosigned by %s", c.Origin, c.Size, strings.Join(names, ", "))
	return nil
}

// parseWitnesses reads data/audit/witnesses.
func parseWitnesses(b []byte) (int, []string, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 2 || len(lines) > maxWitnessesInBag+1 || !bytes.HasSuffix(b, []byte("\n")) {
		return 0, nil, fmt.Errorf("not a quorum line and one witness key a line")
	}
	q, ok := strings.CutPrefix(lines[0], witnessesQuorumWord)
	n, err := strconv.Atoi(q)
	if !ok || err != nil || n < 1 || n > len(lines)-1 || strconv.Itoa(n) != q {
		return 0, nil, fmt.Errorf("the first line is not \"quorum N\" with N between 1 and the number of keys")
	}
	return n, lines[1:], nil
}
