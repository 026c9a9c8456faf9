package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrTampered is what every VerifyError matches: the log is not what it
// claims to be.
var ErrTampered = errors.New("audit log does not verify")

// VerifyError names the first entry or checkpoint that failed.
type VerifyError struct {
	// What is "entry N", "checkpoint N (size S)", "trusted checkpoint",
	// "tree hash N", "signing key" or "log".
	What   string
	Entry  int64 // the entry's sequence number, or -1
	Reason string
}

func (e *VerifyError) Error() string { return e.What + ": " + e.Reason }

// Is makes errors.Is(err, ErrTampered) true.
func (e *VerifyError) Is(target error) bool { return target == ErrTampered }

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
}

// Report is what a successful Verify found.
type Report struct {
	Entries     int64
	Root        tlog.Hash // of the whole log
	Checkpoints int
	Latest      *Checkpoint // nil when there is none
	Trusted     *Checkpoint // nil without VerifyOptions.Trusted
	Keys        []string    // verifier keys the checkpoints were checked with
}

// String is the one-line summary `carrel audit verify` prints.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit log intact: %d entries, %d checkpoints", r.Entries, r.Checkpoints)
	if r.Latest != nil {
		fmt.Fprintf(&b, " (latest covers %d", r.Latest.Size)
		if n := r.Entries - r.Latest.Size; n > 0 {
			fmt.Fprintf(&b, "; %d newer entries not yet signed", n)
		}
		b.WriteString(")")
	}
	if r.Trusted != nil {
		fmt.Fprintf(&b, ", extends the trusted checkpoint of size %d", r.Trusted.Size)
	}
	fmt.Fprintf(&b, ", root %s", r.Root)
	return b.String()
}

// Verify checks the whole log and returns a *VerifyError naming the first
// thing that fails:
//   - entries are numbered 0, 1, 2, … without a gap, and each is in
//     canonical form;
//   - every stored tree hash equals the one recomputed from the entries'
//     fields, and no hash is missing or left over;
//   - every signing key of the log was recorded by a key.created entry;
//   - every checkpoint is validly signed (by opts.Verifiers when given),
//     names this log, and its root is the root of the recomputed tree at its
//     size, so the log extends each of them;
//   - with opts.Trusted, the log extends that checkpoint too.
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
	v := &verification{ctx: ctx, tx: tx, origin: origin, keys: map[string]int64{}}
	steps := []func() error{v.entries, v.orphanFields, v.storedHashes, v.signingKeys,
		func() error { return v.checkpoints(opts.Verifiers) },
		func() error { return v.trusted(opts.Trusted) }}
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
			return otherError("signing key", "%s was never recorded by a key.created entry", k)
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
	}
	return rows.Err()
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
	return nil
}
