package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// CheckpointIfGrown signs a checkpoint of the whole log if entries were
// added since the latest one, and reports whether it did. Either way it
// returns the latest checkpoint. The service calls it on its
// audit.checkpoint_interval timer.
//
// It refuses to sign when the log no longer matches its latest checkpoint
// (shorter, or a different root at that size), when it has entries but no
// checkpoint, and when an entry recorded since the latest checkpoint names
// a later one (checkpoints were deleted): the PC never puts its signature
// on a history it can tell was rewritten. A careful rewrite of everything
// after the latest checkpoint it keeps cannot be told on the PC; a
// checkpoint kept off it, or a witness, is what catches that.
func (l *Log) CheckpointIfGrown(ctx context.Context) (cp Checkpoint, made bool, err error) {
	err = l.Update(ctx, func(tx *Tx) error {
		cp, made, err = tx.checkpoint(ctx, false)
		return err
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("making an audit checkpoint: %w", err)
	}
	return cp, made, nil
}

// Checkpoint signs a checkpoint now, unless the latest one already covers
// the whole log, and returns the latest. The service calls it at every mode
// change, export and shutdown.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	cp, _, err := l.CheckpointIfGrown(ctx)
	return cp, err
}

// checkpoint signs the log as it is inside t. first allows the log's first
// checkpoint, which only the transaction that creates the log signs.
func (t *Tx) checkpoint(ctx context.Context, first bool) (Checkpoint, bool, error) {
	size, err := treeSize(ctx, t.tx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	if size == 0 {
		return Checkpoint{}, false, fmt.Errorf("the log is empty")
	}
	hr := hashReader(ctx, t.tx)
	latest, err := latestCheckpoint(ctx, t.tx)
	switch {
	case errors.Is(err, ErrNoCheckpoint) && !first:
		return Checkpoint{}, false, fmt.Errorf("the log has %d entries and no checkpoint, though carrel signs one when it creates a log: its checkpoints were deleted; refusing to sign (run carrel audit verify)", size)
	case errors.Is(err, ErrNoCheckpoint):
	case err != nil:
		return Checkpoint{}, false, err
	case latest.Size > size:
		return Checkpoint{}, false, fmt.Errorf("the log has %d entries, fewer than its latest checkpoint (%d); refusing to sign (run carrel audit verify)", size, latest.Size)
	default:
		root, err := tlog.TreeHash(latest.Size, hr)
		if err != nil {
			return Checkpoint{}, false, err
		}
		if root != latest.Root {
			return Checkpoint{}, false, fmt.Errorf("the log no longer matches its latest checkpoint (size %d); refusing to sign (run carrel audit verify)", latest.Size)
		}
		if latest.Size == size {
			return latest, false, nil
		}
		if err := checkTailRecords(ctx, t.tx, latest.Size); err != nil {
			return Checkpoint{}, false, fmt.Errorf("%w; refusing to sign (run carrel audit verify)", err)
		}
	}
	root, err := tlog.TreeHash(size, hr)
	if err != nil {
		return Checkpoint{}, false, err
	}
	cp, err := Checkpoint{Origin: t.log.origin, Size: size, Root: root}.sign(t.log.key.signer)
	if err != nil {
		return Checkpoint{}, false, err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO checkpoints (size, made, note) VALUES (?, ?, ?)`,
		size, formatEntryTime(t.log.now()), string(cp.Note))
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("storing checkpoint: %w", err)
	}
	t.signed = true
	return cp, true, nil
}

// checkTailRecords checks what the entries recorded since the latest
// checkpoint (of size latest) say of it: each version 2 entry names it, and
// no version 1 entry follows a version 2 one. Anything else means
// checkpoints were deleted, or entries rewritten, after latest was signed.
func checkTailRecords(ctx context.Context, q querier, latest int64) error {
	var seq, cp sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT seq, checkpoint FROM entries WHERE seq >= ? AND v = 2 AND checkpoint IS NOT ?
		ORDER BY seq LIMIT 1`, latest, latest).Scan(&seq, &cp)
	switch {
	case err == nil:
		return fmt.Errorf("entry %d records a checkpoint of size %d, but the latest stored is of size %d: checkpoints were deleted", seq.Int64, cp.Int64, latest)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("reading the entries since the latest checkpoint: %w", err)
	}
	err = q.QueryRowContext(ctx, `SELECT MAX(seq) FROM entries WHERE seq >= ? AND v = 1`, latest).Scan(&seq)
	if err != nil {
		return fmt.Errorf("reading the entries since the latest checkpoint: %w", err)
	}
	if !seq.Valid {
		return nil
	}
	var newer sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT MIN(seq) FROM entries WHERE v = 2 AND seq < ?`, seq.Int64).Scan(&newer)
	if err != nil {
		return fmt.Errorf("reading the entries since the latest checkpoint: %w", err)
	}
	if newer.Valid {
		return fmt.Errorf("entry %d is in the version 1 form after entry %d in version 2: entries were rewritten", seq.Int64, newer.Int64)
	}
	return nil
}

// latestSize returns the size of the latest stored checkpoint, 0 when there
// is none: the value a version 2 entry records.
func latestSize(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT size FROM checkpoints ORDER BY id DESC LIMIT 1`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the latest checkpoint: %w", err)
	}
	return n, nil
}

// Latest returns the latest signed checkpoint, or ErrNoCheckpoint.
func (l *Log) Latest(ctx context.Context) (Checkpoint, error) {
	return latestCheckpoint(ctx, l.r)
}

func latestCheckpoint(ctx context.Context, q querier) (Checkpoint, error) {
	var msg string
	err := q.QueryRowContext(ctx, `SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1`).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, ErrNoCheckpoint
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("reading the latest checkpoint: %w", err)
	}
	return parseStoredCheckpoint([]byte(msg))
}

// parseStoredCheckpoint reads a checkpoint note without checking its
// signature; Verify does that. It is for the log's own bookkeeping.
func parseStoredCheckpoint(msg []byte) (Checkpoint, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fmt.Errorf("stored checkpoint is not a signed note")
	}
	c, err := parseCheckpointBody(string(msg[:i+1]))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("stored %w", err)
	}
	c.Note = msg
	return c, nil
}

// Proof is what an independent verifier needs to check that one entry is
// in the log: the entry's encoding, its inclusion proof and the signed
// checkpoint the proof leads to (VerifyInclusion).
type Proof struct {
	Entry      []byte
	Inclusion  InclusionProof
	Checkpoint Checkpoint
}

// Prove returns the inclusion proof of entry seq against the latest
// checkpoint. A writable log first signs a checkpoint when the latest does
// not cover seq yet; a read-only one reports that.
func (l *Log) Prove(ctx context.Context, seq int64) (Proof, error) {
	cp, err := l.Latest(ctx)
	if !l.ro && (errors.Is(err, ErrNoCheckpoint) || err == nil && seq >= cp.Size) {
		cp, err = l.Checkpoint(ctx)
	}
	if err != nil {
		return Proof{}, fmt.Errorf("proving entry %d: %w", seq, err)
	}
	if seq >= cp.Size {
		size, err := l.Size(ctx)
		if err == nil && seq < size {
			return Proof{}, fmt.Errorf("proving entry %d: it is newer than the latest checkpoint (size %d); the service signs the next one within audit.checkpoint_interval", seq, cp.Size)
		}
	}
	return l.ProveAt(ctx, seq, cp)
}

// ProveAt returns the inclusion proof of entry seq against cp, a checkpoint
// of this log. An export proves all its entries against one checkpoint.
func (l *Log) ProveAt(ctx context.Context, seq int64, cp Checkpoint) (Proof, error) {
	if seq < 0 || seq >= cp.Size {
		return Proof{}, fmt.Errorf("proving entry %d: no such entry in the checkpoint of size %d", seq, cp.Size)
	}
	ent, err := l.Entry(ctx, seq)
	if err != nil {
		return Proof{}, fmt.Errorf("proving entry %d: %w", seq, err)
	}
	leaf, err := ent.Encode()
	if err != nil {
		return Proof{}, fmt.Errorf("proving entry %d: %w", seq, err)
	}
	p, err := tlog.ProveRecord(cp.Size, seq, hashReader(ctx, l.r))
	if err != nil {
		return Proof{}, fmt.Errorf("proving entry %d: %w", seq, err)
	}
	// A stored tree that was tampered with yields a proof that fails; say so
	// here rather than hand it out.
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, seq, tlog.RecordHash(leaf)); err != nil {
		return Proof{}, fmt.Errorf("proving entry %d: the stored log does not match checkpoint %d (run carrel audit verify): %w", seq, cp.Size, err)
	}
	return Proof{Entry: leaf, Inclusion: InclusionProof{Seq: seq, Size: cp.Size, Hashes: p}, Checkpoint: cp}, nil
}

// ProveConsistencyAt returns the proof that the tree of cp, a checkpoint of
// this log, extends the tree of size oldSize (1 ≤ oldSize ≤ cp.Size): what
// a witness needs with cp. A stored tree that no longer matches cp yields
// an error, not a proof.
func (l *Log) ProveConsistencyAt(ctx context.Context, oldSize int64, cp Checkpoint) (ConsistencyProof, error) {
	if oldSize < 1 || oldSize > cp.Size {
		return ConsistencyProof{}, fmt.Errorf("proving consistency: size %d is not between 1 and the checkpoint's %d", oldSize, cp.Size)
	}
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ConsistencyProof{}, err
	}
	defer tx.Rollback()
	hr := hashReader(ctx, tx)
	p, err := tlog.ProveTree(cp.Size, oldSize, hr)
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("proving consistency from %d to %d: %w", oldSize, cp.Size, err)
	}
	old, err := tlog.TreeHash(oldSize, hr)
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("proving consistency from %d to %d: %w", oldSize, cp.Size, err)
	}
	if err := tlog.CheckTree(p, cp.Size, cp.Root, oldSize, old); err != nil {
		return ConsistencyProof{}, fmt.Errorf("proving consistency from %d to %d: the stored log does not match checkpoint %d (run carrel audit verify): %w", oldSize, cp.Size, cp.Size, err)
	}
	return ConsistencyProof{Old: oldSize, New: cp.Size, Hashes: p}, nil
}

// ProveConsistency returns the proof that the latest checkpoint's tree
// extends the tree of size oldSize (for example that of a checkpoint the
// head librarian kept), and that checkpoint.
func (l *Log) ProveConsistency(ctx context.Context, oldSize int64) (ConsistencyProof, Checkpoint, error) {
	cp, err := l.Latest(ctx)
	if !l.ro && (errors.Is(err, ErrNoCheckpoint) || err == nil && oldSize > cp.Size) {
		cp, err = l.Checkpoint(ctx)
	}
	if err != nil {
		return ConsistencyProof{}, Checkpoint{}, fmt.Errorf("proving consistency: %w", err)
	}
	if oldSize < 1 || oldSize > cp.Size {
		return ConsistencyProof{}, Checkpoint{}, fmt.Errorf("proving consistency: size %d is not between 1 and the latest checkpoint's %d", oldSize, cp.Size)
	}
	p, err := tlog.ProveTree(cp.Size, oldSize, hashReader(ctx, l.r))
	if err != nil {
		return ConsistencyProof{}, Checkpoint{}, fmt.Errorf("proving consistency: %w", err)
	}
	return ConsistencyProof{Old: oldSize, New: cp.Size, Hashes: p}, cp, nil
}
