package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrTampered is what every VerifyError matches: the log is not what it
// claims to be.
var ErrTampered = errors.New("audit log does not verify")

// ErrUnsigned is what a VerifyError matches when the only problem found is
// that the newest entries are covered by no signed checkpoint: they could
// have been changed or cut without the key. A running service signs within
// seconds of an entry; a service that stopped uncleanly signs at its next
// start.
var ErrUnsigned = errors.New("audit log has entries no signed checkpoint covers")

// VerifyError names the first entry or checkpoint that failed.
type VerifyError struct {
	// What is "entry N", "entries N–M", "checkpoint N (size S)",
	// "checkpoint of size S", "trusted checkpoint", "tree hash N",
	// "signing key" or "log".
	What   string
	Entry  int64 // the entry's sequence number, or -1
	Reason string

	unsigned bool // the failure is ErrUnsigned's
}

func (e *VerifyError) Error() string { return e.What + ": " + e.Reason }

// Is makes errors.Is(err, ErrTampered) true, and errors.Is(err,
// ErrUnsigned) for an uncovered tail.
func (e *VerifyError) Is(target error) bool {
	return target == ErrTampered || target == ErrUnsigned && e.unsigned
}

func entryError(seq int64, format string, a ...any) *VerifyError {
	return &VerifyError{What: fmt.Sprintf("entry %d", seq), Entry: seq, Reason: fmt.Sprintf(format, a...)}
}

func otherError(what, format string, a ...any) *VerifyError {
	return &VerifyError{What: what, Entry: -1, Reason: fmt.Sprintf(format, a...)}
}

// VerifyOptions say what to trust besides the log itself.
type VerifyOptions struct {
	// Trusted is a signed checkpoint kept off the PC (`carrel audit
	// checkpoint > file`). The log must be a consistent extension of it.
	// Without one, a log rewritten and re-signed by someone holding the
	// PC's key cannot be told from the original.
	Trusted []byte
	// Verifiers are verifier keys the head librarian holds. When given,
	// every checkpoint, and Trusted, must be signed by one of them; else by
	// a key the log itself recorded in a key.created entry (which whoever
	// replaced the log could also have replaced).
	Verifiers []string
	// WitnessKeys are witness verifier keys (tlog-cosignature, type 4).
	// Every stored cosignature by one of them, and every cosignature by
	// one of them on Trusted, must verify; Report.Witnessed names the
	// latest checkpoint at least Quorum of them cosigned. Cosignatures by
	// other witnesses are counted as unchecked.
	WitnessKeys []string
	// Quorum is how many of WitnessKeys make a checkpoint witnessed; at
	// least 1.
	Quorum int
}

// Report is what a successful Verify found.
type Report struct {
	Entries     int64
	Root        tlog.Hash // of the whole log
	Checkpoints int
	Latest      *Checkpoint // nil when there is none
	Trusted     *Checkpoint // nil without VerifyOptions.Trusted
	Keys        []string    // verifier keys the checkpoints were checked with

	// Cosignatures is how many stored cosignatures verified with
	// VerifyOptions.WitnessKeys; Unchecked how many are by witnesses whose
	// key was not given.
	Cosignatures, Unchecked int
	// Witnessed is the latest checkpoint cosigned by Quorum of the witness
	// keys (nil when none is), WitnessedBy the names of the witnesses that
	// cosigned it, and Quorum the quorum applied.
	Witnessed   *Checkpoint
	WitnessedBy []string
	Quorum      int
	// TrustedWitnesses names the witnesses whose cosignatures on the
	// trusted checkpoint verified.
	TrustedWitnesses []string
}

// String is the one-line summary `carrel audit verify` prints.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit log intact: %d entries, %d checkpoints", r.Entries, r.Checkpoints)
	if r.Latest != nil {
		fmt.Fprintf(&b, " (latest covers %d)", r.Latest.Size)
	}
	if r.Trusted != nil {
		fmt.Fprintf(&b, ", extends the trusted checkpoint of size %d", r.Trusted.Size)
		if len(r.TrustedWitnesses) > 0 {
			fmt.Fprintf(&b, " (cosigned by %s)", strings.Join(r.TrustedWitnesses, ", "))
		}
	}
	if r.Witnessed != nil {
		fmt.Fprintf(&b, ", witnessed up to %d by %s", r.Witnessed.Size, strings.Join(r.WitnessedBy, ", "))
	}
	if r.Cosignatures+r.Unchecked > 0 {
		fmt.Fprintf(&b, ", %d cosignatures checked", r.Cosignatures)
		if r.Unchecked > 0 {
			fmt.Fprintf(&b, " (%d by witnesses whose key was not given)", r.Unchecked)
		}
	}
	fmt.Fprintf(&b, ", root %s", r.Root)
	return b.String()
}

// Limits says, in plain words, what the report cannot prove: everything
// on the PC, the signing key included, is in the hands of whoever
// administers it.
func (r Report) Limits() string {
	if r.Trusted == nil && r.Witnessed != nil {
		if r.Witnessed.Size == r.Entries {
			return "the whole log is as the witnesses saw it when they cosigned its latest checkpoint"
		}
		return fmt.Sprintf("entries 0–%d are as the witnesses saw them when they cosigned; entries %d–%d rest on this PC's key alone "+
			"until a witness cosigns a newer checkpoint", r.Witnessed.Size-1, r.Witnessed.Size, r.Entries-1)
	}
	if r.Trusted == nil {
		return "not compared with a checkpoint kept off the PC: a log cut back to one of its own checkpoints, " +
			"or rewritten and signed again with this PC's key, looks the same on the PC; only a checkpoint " +
			"kept off it (--trusted FILE, from `carrel audit checkpoint`) or a witness can prove the log's end"
	}
	if r.Trusted.Size == r.Entries {
		return "the whole log is as it was when the trusted checkpoint was kept"
	}
	return fmt.Sprintf("entries 0–%d are as they were when the trusted checkpoint was kept; entries %d–%d rest on this PC's key alone "+
		"(keep a newer checkpoint off the PC, or use a witness, to prove them)", r.Trusted.Size-1, r.Trusted.Size, r.Entries-1)
}

// Verify checks the whole log and returns a *VerifyError naming the first
// thing that fails:
//   - entries are numbered 0, 1, 2, … without a gap, and each is in
//     canonical form, no version 1 entry after a version 2 one;
//   - every stored tree hash equals the one recomputed from the entries'
//     fields, and no hash is missing or left over;
//   - every signing key of the log was recorded by a key.created entry;
//   - every checkpoint is validly signed (by opts.Verifiers when given),
//     names this log, and its root is the root of the recomputed tree at its
//     size, so the log extends each of them;
//   - every version 2 entry names the latest stored checkpoint not larger
//     than its own sequence number: a checkpoint an entry names that is not
//     stored was deleted;
//   - with opts.Trusted, the log extends that checkpoint too;
//   - a signed checkpoint (the PC's latest, or opts.Trusted) covers every
//     entry; else the error names the uncovered entries and matches
//     ErrUnsigned.
//
// Even a log that passes may have been cut back to one of its checkpoints,
// or rewritten and signed again by someone holding the PC's key: only
// opts.Trusted, a checkpoint kept off the PC, or a witness shows that
// (Report.Limits).
//
// Other errors (an unreadable file) are returned as they are.
func (l *Log) Verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	// One read transaction: a writer appending meanwhile is not seen.
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Report{}, err
	}
	defer tx.Rollback()
	// The origin as stored now, not as it was when the Log was opened.
	origin, _, err := getMeta(ctx, tx, "origin")
	if err != nil {
		return Report{}, err
	}
	v := &verification{ctx: ctx, tx: tx, origin: origin, keys: map[string]int64{}, firstV2: -1}
	steps := []func() error{v.entries, v.orphanFields, v.storedHashes, v.signingKeys,
		func() error { return v.checkpoints(opts.Verifiers) }, v.records,
		func() error { return v.cosignatures(opts.WitnessKeys, opts.Quorum) },
		func() error { return v.trusted(opts.Trusted) }, v.covered}
	for _, step := range steps {
		if err := step(); err != nil {
			return Report{}, err
		}
	}
	return v.report, nil
}

// verification is the state of one Verify run: the tree recomputed from
// the entries, kept in memory by stored hash index.
type verification struct {
	ctx    context.Context
	tx     *sql.Tx
	origin string
	tree   []tlog.Hash
	keys   map[string]int64 // fingerprint (hex) of each key.created audit-signing key → entry
	vs     note.Verifiers
	report Report
	bad    *VerifyError // the first problem with an entry or the tree
	badAt  int64        // the entry it is at

	recorded []int64 // each entry's checkpoint size; -1 for version 1
	firstV2  int64   // the first version 2 entry, or -1
	sizes    []int64 // the stored checkpoints' sizes, in order

	witnessKeys []WitnessKey
	names       map[int64][]string // checkpoint id → witnesses whose cosignature verified
}

func (v *verification) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, id := range indexes {
			if id < 0 || id >= int64(len(v.tree)) {
				return nil, fmt.Errorf("tree hash %d is beyond the log", id)
			}
			out[i] = v.tree[id]
		}
		return out, nil
	})
}

// flag keeps the problem found at the lowest entry: the passes over
// entries, fields and hashes each find problems in order, and the report
// names the first entry that fails, whichever pass saw it.
func (v *verification) flag(e *VerifyError, at int64) {
	if v.bad == nil || at < v.badAt {
		v.bad, v.badAt = e, at
	}
}

// errGap stops the pass over entries: after a gap the numbering says
// nothing more.
var errGap = errors.New("gap")

func (v *verification) entries() error {
	var n int64
	err := scanStored(v.ctx, v.tx, Query{}, func(s storedEntry) error {
		if s.seq != n {
			v.flag(entryError(n, "is missing (the next stored entry is %d): entries were deleted", s.seq), n)
			return errGap
		}
		var leaf tlog.Hash // a placeholder for an entry that cannot be encoded
		e, err := s.entry()
		if err == nil {
			leaf, err = e.Hash()
		}
		if err != nil {
			v.flag(entryError(n, "%v", err), n)
		}
		rec := int64(-1)
		switch {
		case err == nil && e.Version == 2:
			rec = e.Checkpoint
			if v.firstV2 < 0 {
				v.firstV2 = n
			}
		case err == nil && v.firstV2 >= 0:
			v.flag(entryError(n, "is in the version 1 form, after entry %d in version 2: entries were rewritten", v.firstV2), n)
		}
		v.recorded = append(v.recorded, rec)
		hs, err := tlog.StoredHashesForRecordHash(n, leaf, v.reader())
		if err != nil {
			return err
		}
		v.tree = append(v.tree, hs...)
		if fp, ok := signingKeyRecorded(e); ok {
			v.keys[fp] = n
		}
		n++
		return nil
	})
	v.report.Entries = n
	if err != nil && !errors.Is(err, errGap) {
		return err
	}
	v.report.Root, err = tlog.TreeHash(n, v.reader())
	return err
}

// signingKeyRecorded returns the fingerprint a key.created entry records
// for an audit signing key.
func signingKeyRecorded(e Entry) (string, bool) {
	if e.Kind != KeyCreated {
		return "", false
	}
	key, _ := e.Value("key")
	fp, _ := e.Value("fingerprint")
	return fp, key == "audit-signing" && fp != ""
}

func (v *verification) orphanFields() error {
	var seq sql.NullInt64
	err := v.tx.QueryRowContext(v.ctx, `SELECT MIN(seq) FROM fields WHERE seq NOT IN (SELECT seq FROM entries)`).Scan(&seq)
	if err != nil {
		return fmt.Errorf("reading audit fields: %w", err)
	}
	if seq.Valid {
		v.flag(entryError(seq.Int64, "has fields but no entry: the entry was deleted"), seq.Int64)
	}
	return nil
}

// storedHashes compares the stored tree with the recomputed one and then
// reports the first problem of all three passes.
func (v *verification) storedHashes() error {
	if err := v.compareHashes(); err != nil {
		return err
	}
	if v.bad != nil {
		return v.bad
	}
	return nil
}

func (v *verification) compareHashes() error {
	rows, err := v.tx.QueryContext(v.ctx, `SELECT id, hash FROM hashes ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading tree hashes: %w", err)
	}
	defer rows.Close()
	var want int64
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return fmt.Errorf("reading tree hashes: %w", err)
		}
		if id >= int64(len(v.tree)) {
			v.flag(entryError(v.report.Entries, "is missing: the stored tree goes on past it (tree hash %d), so entries were deleted from the end", id), v.report.Entries)
			return nil
		}
		if id != want {
			v.hashProblem(want, "is missing")
			return nil
		}
		if len(b) != tlog.HashSize || tlog.Hash(b) != v.tree[id] {
			v.hashProblem(id, "differs from the one recomputed from the entries")
			return nil
		}
		want++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading tree hashes: %w", err)
	}
	if want != int64(len(v.tree)) {
		v.hashProblem(want, "is missing")
	}
	return nil
}

// hashProblem names the entry a leaf hash belongs to, since that is what
// was changed; an interior hash is named by its place in the tree.
func (v *verification) hashProblem(id int64, reason string) {
	level, n := tlog.SplitStoredHashIndex(id)
	if level == 0 {
		v.flag(entryError(n, "its stored leaf hash %s: the entry or its hash was changed", reason), n)
		return
	}
	first, last := n<<level, (n+1)<<level-1
	v.flag(otherError(fmt.Sprintf("tree hash %d", id), "(level %d over entries %d to %d) %s: the stored tree was changed",
		level, first, last, reason), first)
}

func (v *verification) signingKeys() error {
	rows, err := v.tx.QueryContext(v.ctx, `SELECT verifier FROM keys ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading signing keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("reading signing keys: %w", err)
		}
		if _, ok := v.keys[hex.EncodeToString(Fingerprint(k))]; !ok {
			return otherError("signing key", "%s was never recorded by a key.created entry", quoteName(k))
		}
		v.report.Keys = append(v.report.Keys, k)
	}
	return rows.Err()
}

func (v *verification) checkpoints(given []string) error {
	keys := v.report.Keys
	if len(given) > 0 {
		keys = given
	}
	if len(keys) > 0 {
		vs, err := verifiers(keys)
		if err != nil {
			return err
		}
		v.vs = vs
		v.report.Keys = keys
	}
	rows, err := v.tx.QueryContext(v.ctx, `SELECT id, size, note FROM checkpoints ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading checkpoints: %w", err)
	}
	defer rows.Close()
	var prev int64
	for rows.Next() {
		var id, size int64
		var msg string
		if err := rows.Scan(&id, &size, &msg); err != nil {
			return fmt.Errorf("reading checkpoints: %w", err)
		}
		what := fmt.Sprintf("checkpoint %d (size %d)", id, size)
		c, err := v.check([]byte(msg))
		if err != nil {
			return otherError(what, "%v", err)
		}
		if c.Size != size {
			return otherError(what, "its note says size %d", c.Size)
		}
		if c.Size < prev {
			return otherError(what, "is smaller than the checkpoint before it (%d)", prev)
		}
		prev = c.Size
		v.report.Checkpoints++
		v.report.Latest = &c
		v.sizes = append(v.sizes, c.Size)
	}
	return rows.Err()
}

// records checks the checkpoint sizes version 2 entries carry against the
// checkpoints stored: each names the latest checkpoint not larger than its
// own sequence number, the one that was latest when it was recorded.
func (v *verification) records() error {
	want, next := int64(0), 0
	for n, rec := range v.recorded {
		for next < len(v.sizes) && v.sizes[next] <= int64(n) {
			want = v.sizes[next]
			next++
		}
		switch {
		case rec < 0 || rec == want:
		case rec > int64(n):
			return entryError(int64(n), "records a checkpoint of size %d, beyond its own place in the log: the log was cut back after that checkpoint was signed", rec)
		case rec > want:
			return &VerifyError{What: fmt.Sprintf("checkpoint of size %d", rec), Entry: int64(n),
				Reason: fmt.Sprintf("missing: entry %d records that it was signed before entry %d was written, but audit.db no longer holds it: checkpoints were deleted", n, n)}
		default:
			return entryError(int64(n), "records that the latest checkpoint had size %d when it was written, but a checkpoint of size %d was signed before it: the entry was rewritten", rec, want)
		}
	}
	return nil
}

// covered fails when a tail of the log is covered by no signed
// checkpoint: the PC's latest, or the trusted one.
func (v *verification) covered() error {
	var cov int64
	if v.report.Latest != nil {
		cov = v.report.Latest.Size
	}
	if v.report.Trusted != nil {
		cov = max(cov, v.report.Trusted.Size)
	}
	n := v.report.Entries
	if cov >= n {
		return nil
	}
	what := fmt.Sprintf("entries %d–%d", cov, n-1)
	if cov == n-1 {
		what = fmt.Sprintf("entry %d", cov)
	}
	latest := "there is no signed checkpoint"
	if cov > 0 {
		latest = fmt.Sprintf("the latest signed checkpoint covers entries 0–%d", cov-1)
	}
	return &VerifyError{What: what, Entry: cov, unsigned: true,
		Reason: "covered by no signed checkpoint (" + latest + "): anyone with access to the PC could have changed them, or cut entries after them, without its key"}
}

// check opens a checkpoint and checks that the log extends it.
func (v *verification) check(msg []byte) (Checkpoint, error) {
	if v.vs == nil {
		return Checkpoint{}, fmt.Errorf("the log has no signing key to check it with")
	}
	c, err := openCheckpoint(msg, v.vs)
	if err != nil {
		return c, err
	}
	if c.Origin != v.origin {
		return c, fmt.Errorf("is for log %q, not this log (%q)", c.Origin, v.origin)
	}
	n := v.report.Entries
	if c.Size > n {
		return c, fmt.Errorf("covers %d entries but the log has only %d: entries were deleted from the end", c.Size, n)
	}
	if c.Size == 0 {
		return c, nil
	}
	proof, err := tlog.ProveTree(n, c.Size, v.reader())
	if err != nil {
		return c, err
	}
	if err := tlog.CheckTree(proof, n, v.report.Root, c.Size, c.Root); err != nil {
		return c, fmt.Errorf("the log does not extend it: entries before %d were changed, removed or reordered", c.Size)
	}
	return c, nil
}

func (v *verification) trusted(msg []byte) error {
	if msg == nil {
		return nil
	}
	c, err := v.check(msg)
	if err != nil {
		return otherError("trusted checkpoint", "%v", err)
	}
	v.report.Trusted = &c
	// A cosigned checkpoint (`carrel audit checkpoint --cosigned`) carries
	// the witnesses' lines after the log's; each by a given witness key
	// must verify.
	own, others, err := splitNoteSignatures(msg, c.Origin)
	if err != nil {
		return otherError("trusted checkpoint", "%v", err)
	}
	base := c
	base.Note = own
	for _, line := range others {
		cs, _, err := VerifyCosignature(base, line, v.witnessKeys)
		switch {
		case errors.Is(err, ErrUnknownWitness):
		case err != nil:
			return otherError("trusted checkpoint", "%v", err)
		default:
			v.report.TrustedWitnesses = append(v.report.TrustedWitnesses, cs.Witness)
		}
	}
	return nil
}

// splitNoteSignatures returns a signed note with only the signature lines
// by key name origin, and the other signature lines.
func splitNoteSignatures(msg []byte, origin string) ([]byte, []string, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, nil, fmt.Errorf("malformed note: no signature block")
	}
	own := bytes.Clone(msg[:i+2])
	var others []string
	for _, line := range strings.SplitAfter(string(msg[i+2:]), "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "— "+origin+" ") {
			own = append(own, line...)
		} else {
			others = append(others, line)
		}
	}
	return own, others, nil
}

// cosignatures checks every stored cosignature: it must be for a stored
// checkpoint, and one by a given witness key must verify on it. The latest
// checkpoint cosigned by quorum of the keys is the witnessed one.
func (v *verification) cosignatures(keys []string, quorum int) error {
	wks, err := ParseWitnessKeys(keys)
	if err != nil {
		return err
	}
	v.witnessKeys = wks
	quorum = max(quorum, 1)
	v.report.Quorum = quorum
	rows, err := v.tx.QueryContext(v.ctx, `SELECT s.checkpoint, c.note, s.witness, s.key_hash, s.line
		FROM cosignatures s LEFT JOIN checkpoints c ON c.id = s.checkpoint ORDER BY s.checkpoint, s.witness, s.key_hash`)
	if err != nil {
		return fmt.Errorf("reading cosignatures: %w", err)
	}
	defer rows.Close()
	by := map[int64][]string{}
	cps := map[int64]Checkpoint{}
	for rows.Next() {
		var id, keyHash int64
		var msg sql.NullString
		var name, line string
		if err := rows.Scan(&id, &msg, &name, &keyHash, &line); err != nil {
			return fmt.Errorf("reading cosignatures: %w", err)
		}
		what := fmt.Sprintf("cosignature by %s on checkpoint %d", name, id)
		if !msg.Valid {
			return otherError(what, "is for a checkpoint audit.db no longer holds: checkpoints were deleted")
		}
		cp, err := parseStoredCheckpoint([]byte(msg.String))
		if err != nil {
			return otherError(what, "%v", err)
		}
		what = fmt.Sprintf("cosignature by %s on checkpoint %d (size %d)", name, id, cp.Size)
		lineName, sig, err := splitSignatureLine(line)
		if err != nil {
			return otherError(what, "%v", err)
		}
		if lineName != name || int64(binary.BigEndian.Uint32(sig)) != keyHash {
			return otherError(what, "its signature line names another witness or key: the stored cosignature was changed")
		}
		cs, k, err := VerifyCosignature(cp, line, wks)
		switch {
		case errors.Is(err, ErrUnknownWitness):
			v.report.Unchecked++
			continue
		case err != nil:
			return otherError(what, "%v", err)
		}
		v.report.Cosignatures++
		if !slices.Contains(by[id], k.Text) {
			by[id] = append(by[id], k.Text)
			cps[id] = cp
			v.witnessedBy(id, cs.Witness)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading cosignatures: %w", err)
	}
	best := int64(-1)
	for id, ks := range by {
		if len(ks) >= quorum && id > best {
			best = id
		}
	}
	if best >= 0 {
		cp := cps[best]
		v.report.Witnessed = &cp
		v.report.WitnessedBy = v.names[best]
	}
	return nil
}

func (v *verification) witnessedBy(id int64, name string) {
	if v.names == nil {
		v.names = map[int64][]string{}
	}
	v.names[id] = append(v.names[id], name)
}
