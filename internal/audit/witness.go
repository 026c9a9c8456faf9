package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Witnesses cosign the log's checkpoints (c2sp.org/tlog-witness): each
// cosigns a checkpoint only when the log is a consistent extension of the
// last one it cosigned. The service (package witness) pushes checkpoints;
// this file keeps what comes back, in audit.db beside the checkpoints:
// every cosignature as the witness sent it, and per witness the size it
// last cosigned, its last error, and a refusal waiting for an
// administrator's acknowledgement. A refusal is also a witness.refused
// entry, and an acknowledgement a witness.acknowledged entry.

// Why a witness refused a checkpoint: the log is not an extension of what
// the witness cosigned before. These are the values of the why field of a
// witness.refused entry.
const (
	// RefusedNotExtension: the witness holds a tree this log does not
	// extend (it answered 422 to a consistency proof from that tree's
	// size): the log was rewritten, or wiped and restarted with the key
	// kept.
	RefusedNotExtension = "not-extension"
	// RefusedRolledBack: the witness has cosigned more entries than the log
	// has: the log was cut back, or wiped and restarted.
	RefusedRolledBack = "rolled-back"
	// RefusedKeyNotTrusted: the witness knows this log's origin but not
	// the key it is signed with (403): the log was started again with a new
	// key (the data folder wiped, or audit.key replaced), or the witness was
	// told another key.
	RefusedKeyNotTrusted = "key-not-trusted"
)

// WitnessState is what the log keeps of one configured witness.
type WitnessState struct {
	Name string // the name in the config
	Key  string // the witness key the state is about
	// Size is the tree size the witness last cosigned (0: none): the "old"
	// size of the next add-checkpoint request.
	Size     int64
	Cosigned time.Time // when it last cosigned; zero if never
	Error    string    // the last failure, "" after a success
	ErrorAt  time.Time
	// Refusal is the latest refusal, acknowledged or not; nil if none.
	Refusal *Refusal
}

// Refusal is a witness's refusal to cosign because the log is not an
// extension of what it cosigned.
type Refusal struct {
	Why         string // RefusedNotExtension, RefusedRolledBack or RefusedKeyNotTrusted
	Detail      string // what the witness answered, in carrel's words
	At          time.Time
	WitnessSize int64 // the size the witness holds (0 when it did not say)
	LogSize     int64 // the size of the checkpoint refused
	Entry       int64 // the witness.refused entry
	AckedAt     time.Time
	AckedBy     string
}

// Pending reports whether the refusal waits for an acknowledgement.
func (r *Refusal) Pending() bool { return r != nil && r.AckedAt.IsZero() }

// ErrNoRefusal is returned by AcknowledgeRefusal when no refusal is waiting.
var ErrNoRefusal = errors.New("no refusal waits for an acknowledgement")

// WitnessStates returns what the log keeps of every witness it has seen,
// by name.
func (l *Log) WitnessStates(ctx context.Context) ([]WitnessState, error) {
	rows, err := l.r.QueryContext(ctx, witnessColumns+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("reading witness states: %w", err)
	}
	defer rows.Close()
	var out []WitnessState
	for rows.Next() {
		st, err := scanWitness(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// WitnessState returns the state of the witness name; ok is false when the
// log has none.
func (l *Log) WitnessState(ctx context.Context, name string) (st WitnessState, ok bool, err error) {
	return witnessState(ctx, l.r, name)
}

const witnessColumns = `SELECT name, key, size, cosigned, error, error_at, refused_why, refused_detail, refused_at,
	refused_size, refused_log, refused_entry, acked_at, acked_by FROM witnesses`

func witnessState(ctx context.Context, q querier, name string) (WitnessState, bool, error) {
	rows, err := q.QueryContext(ctx, witnessColumns+` WHERE name = ?`, name)
	if err != nil {
		return WitnessState{}, false, fmt.Errorf("reading the state of witness %q: %w", name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return WitnessState{}, false, rows.Err()
	}
	st, err := scanWitness(rows)
	return st, err == nil, err
}

func scanWitness(rows *sql.Rows) (WitnessState, error) {
	var st WitnessState
	var cosigned, errAt, why, detail, refusedAt, ackedAt, ackedBy string
	var r Refusal
	err := rows.Scan(&st.Name, &st.Key, &st.Size, &cosigned, &st.Error, &errAt, &why, &detail, &refusedAt,
		&r.WitnessSize, &r.LogSize, &r.Entry, &ackedAt, &ackedBy)
	if err != nil {
		return st, fmt.Errorf("reading witness states: %w", err)
	}
	st.Cosigned, st.ErrorAt = parseStateTime(cosigned), parseStateTime(errAt)
	if why != "" {
		r.Why, r.Detail, r.At, r.AckedAt, r.AckedBy = why, detail, parseStateTime(refusedAt), parseStateTime(ackedAt), ackedBy
		st.Refusal = &r
	}
	return st, nil
}

// parseStateTime reads a time of the witnesses table; "" is the zero time.
func parseStateTime(s string) time.Time {
	t, err := parseEntryTime(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func stateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatEntryTime(t)
}

// ensureWitness makes the row of witness name for key. A row that was
// about another key starts again from size 0: the size was another
// witness's.
func (t *Tx) ensureWitness(ctx context.Context, name, key string) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO witnesses (name, key) VALUES (?, ?)`, name, key); err != nil {
		return fmt.Errorf("storing the state of witness %q: %w", name, err)
	}
	_, err := t.tx.ExecContext(ctx, `UPDATE witnesses SET key = ?, size = 0, cosigned = '' WHERE name = ? AND key != ?`, key, name, key)
	if err != nil {
		return fmt.Errorf("storing the state of witness %q: %w", name, err)
	}
	return nil
}

// AddCosignatures verifies the cosignature lines witness name (with key)
// returned for checkpoint cp, stores those that verify beside cp, and
// records that the witness cosigned cp.Size. Lines by other keys are
// ignored; it fails when none verifies with key, and stores nothing then.
func (l *Log) AddCosignatures(ctx context.Context, name string, key WitnessKey, cp Checkpoint, lines []string) ([]Cosignature, error) {
	var out []Cosignature
	for _, line := range lines {
		c, _, err := VerifyCosignature(cp, line, []WitnessKey{key})
		if errors.Is(err, ErrUnknownWitness) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("witness %q answered without a cosignature by its key %s", name, key.Text)
	}
	err := l.Update(ctx, func(tx *Tx) error {
		var id int64
		err := tx.tx.QueryRowContext(ctx, `SELECT id FROM checkpoints WHERE size = ? AND note = ? ORDER BY id DESC LIMIT 1`,
			cp.Size, string(cp.Note)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("storing cosignatures: checkpoint %d is not stored in this log", cp.Size)
		}
		if err != nil {
			return fmt.Errorf("storing cosignatures: %w", err)
		}
		now := stateTime(l.now())
		for _, c := range out {
			_, err := tx.tx.ExecContext(ctx, `INSERT OR REPLACE INTO cosignatures (checkpoint, witness, key_hash, line, signed, received)
				VALUES (?, ?, ?, ?, ?, ?)`, id, c.Witness, int64(c.KeyHash), c.Line, formatEntryTime(c.Signed), now)
			if err != nil {
				return fmt.Errorf("storing cosignatures: %w", err)
			}
		}
		if err := tx.ensureWitness(ctx, name, key.Text); err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx, `UPDATE witnesses SET size = ?, cosigned = ?, error = '', error_at = '' WHERE name = ?`,
			cp.Size, now, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxWitnessError bounds a stored error message.
const maxWitnessError = 1024

// WitnessFailed records that pushing to witness name failed for a reason
// that is not a refusal (unreachable, an error of its own, a bad answer).
func (l *Log) WitnessFailed(ctx context.Context, name, key, msg string) error {
	return l.Update(ctx, func(tx *Tx) error {
		if err := tx.ensureWitness(ctx, name, key); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, `UPDATE witnesses SET error = ?, error_at = ? WHERE name = ?`,
			clip(msg, maxWitnessError), stateTime(l.now()), name)
		return err
	})
}

// WitnessResync sets the size witness name last cosigned to size, as the
// witness named it in a 409 answer: the next request is made from there.
func (l *Log) WitnessResync(ctx context.Context, name, key string, size int64) error {
	return l.Update(ctx, func(tx *Tx) error {
		if err := tx.ensureWitness(ctx, name, key); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, `UPDATE witnesses SET size = ? WHERE name = ?`, size, name)
		return err
	})
}

// WitnessRefused records a refusal of witness name. Its cause is the
// witness and the reason (r.Why). A cause is recorded as a witness.refused
// entry, with the sizes of that refusal, once per episode: from the first
// refusal for that reason until the witness next cosigns this log. The
// same cause again within the episode only updates the witness's error
// with what it said this time.
//
// The sizes are not part of the cause: a witness that is also cosigning
// another copy of this log (a cloned PC, a restored data folder running
// elsewhere) names a new size at every refused push, and a refusal per
// retry (several an hour) would bury the one that matters. The first
// entry says what happened; the service log and the error in `carrel
// status` say what the witness says now.
//
// An acknowledgement does not end the episode: it says an administrator
// saw this refusal, and a witness that goes on refusing for the same
// reason (nothing was fixed yet, or the clone still runs) must not raise
// the alarm again at its next retry, which would make acknowledging
// useless. A different reason is a new cause, acknowledged or not, and so
// is the same reason after the witness cosigned again.
//
// It returns the refusal (with the entry that recorded its cause) and
// whether that entry is new.
func (l *Log) WitnessRefused(ctx context.Context, name, key string, r Refusal) (Refusal, bool, error) {
	var stored Refusal
	var isNew bool
	err := l.Update(ctx, func(tx *Tx) error {
		if err := tx.ensureWitness(ctx, name, key); err != nil {
			return err
		}
		now := l.now()
		detail := clip(r.Detail, maxWitnessError)
		seen, err := refusalsSinceCosigned(ctx, tx.tx, name, key)
		if err != nil {
			return err
		}
		if seq, ok := seen[r.Why]; ok {
			stored = Refusal{Why: r.Why, Detail: detail, At: now, WitnessSize: r.WitnessSize, LogSize: r.LogSize, Entry: seq}
			_, err := tx.tx.ExecContext(ctx, `UPDATE witnesses SET error = ?, error_at = ? WHERE name = ?`, detail, stateTime(now), name)
			return err
		}
		seq, err := tx.Record(ctx, Event{Kind: WitnessRefused, Actor: "witness", Fields: []Field{
			Token("witness", name), Token("why", r.Why), Int("witness_size", r.WitnessSize), Int("log_size", r.LogSize)}})
		if err != nil {
			return err
		}
		stored = Refusal{Why: r.Why, Detail: detail, At: now, WitnessSize: r.WitnessSize, LogSize: r.LogSize, Entry: seq}
		isNew = true
		_, err = tx.tx.ExecContext(ctx, `UPDATE witnesses SET error = ?, error_at = ?, refused_why = ?, refused_detail = ?,
			refused_at = ?, refused_size = ?, refused_log = ?, refused_entry = ?, acked_at = '', acked_by = '' WHERE name = ?`,
			detail, stateTime(now), r.Why, detail, stateTime(now), r.WitnessSize, r.LogSize, seq, name)
		return err
	})
	if err != nil {
		return Refusal{}, false, fmt.Errorf("recording the refusal of witness %q: %w", name, err)
	}
	return stored, isNew, nil
}

// refusalsSinceCosigned returns, by reason, the witness.refused entries
// of witness name (with key) recorded after the largest checkpoint the
// witness cosigned: the refusals of the episode still running. The
// witnesses table's size is not used: a 409 sets it to whatever size the
// witness names, which for a cloned log is the other copy's. The
// cosignatures table holds only cosignatures that verified under the key
// when they were stored.
func refusalsSinceCosigned(ctx context.Context, q querier, name, key string) (map[string]int64, error) {
	from := int64(0)
	if k, err := ParseWitnessKey(key); err == nil {
		err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(c.size), 0) FROM cosignatures s JOIN checkpoints c ON c.id = s.checkpoint
			WHERE s.witness = ? AND s.key_hash = ?`, k.Name, int64(k.Hash)).Scan(&from)
		if err != nil {
			return nil, fmt.Errorf("reading what witness %q cosigned: %w", name, err)
		}
	}
	seen := map[string]int64{}
	err := scanStored(ctx, q, Query{Kinds: []Kind{WitnessRefused}, Fields: map[string]string{"witness": name}, From: from}, func(s storedEntry) error {
		for _, f := range s.fields {
			if f.key == "why" {
				seen[f.value] = s.seq
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the refusals of witness %q: %w", name, err)
	}
	return seen, nil
}

// AcknowledgeRefusal records, as a witness.acknowledged entry by actor,
// that an administrator saw the refusal of witness name; `carrel status`
// stops showing it as an alarm. It fails with ErrNoRefusal when none
// waits.
func (l *Log) AcknowledgeRefusal(ctx context.Context, name, actor string) (Refusal, error) {
	var r Refusal
	err := l.Update(ctx, func(tx *Tx) error {
		st, ok, err := witnessState(ctx, tx.tx, name)
		if err != nil {
			return err
		}
		if !ok || !st.Refusal.Pending() {
			return fmt.Errorf("witness %q: %w", name, ErrNoRefusal)
		}
		r = *st.Refusal
		if _, err := tx.Record(ctx, Event{Kind: WitnessAcknowledged, Actor: actor, Fields: []Field{
			Token("witness", name), Token("why", r.Why), Int("refusal", r.Entry)}}); err != nil {
			return err
		}
		r.AckedAt, r.AckedBy = l.now().UTC().Round(0), actor
		_, err = tx.tx.ExecContext(ctx, `UPDATE witnesses SET acked_at = ?, acked_by = ? WHERE name = ?`,
			stateTime(r.AckedAt), actor, name)
		return err
	})
	return r, err
}

// CosignedCheckpoint is a checkpoint with the cosignatures stored for it.
type CosignedCheckpoint struct {
	Checkpoint   Checkpoint
	Cosignatures []Cosignature
}

// Note returns the checkpoint's signed note with the cosignature lines
// added after the log's signature: a note signed by the log and its
// witnesses, which `carrel audit verify --trusted` and any signed-note
// verifier read.
func (c CosignedCheckpoint) Note() []byte {
	b := bytes.Clone(c.Checkpoint.Note)
	for _, s := range c.Cosignatures {
		b = append(b, s.Line...)
	}
	return b
}

// LatestCosigned returns the latest checkpoint that at least quorum of
// keys cosigned (each key counted once), with the cosignatures that verify
// with keys. Stored cosignatures that do not verify are an error: the
// stored log was changed.
func (l *Log) LatestCosigned(ctx context.Context, keys []WitnessKey, quorum int) (CosignedCheckpoint, error) {
	quorum = max(quorum, 1)
	rows, err := l.r.QueryContext(ctx, `SELECT c.id, c.note, s.line FROM cosignatures s JOIN checkpoints c ON c.id = s.checkpoint
		ORDER BY c.id DESC, s.witness, s.key_hash`)
	if err != nil {
		return CosignedCheckpoint{}, fmt.Errorf("reading cosignatures: %w", err)
	}
	defer rows.Close()
	var cur CosignedCheckpoint
	curID := int64(-1)
	counted := map[string]bool{}
	for rows.Next() {
		var id int64
		var msg, line string
		if err := rows.Scan(&id, &msg, &line); err != nil {
			return CosignedCheckpoint{}, fmt.Errorf("reading cosignatures: %w", err)
		}
		if id != curID {
			if len(counted) >= quorum {
				return cur, nil
			}
			cp, err := parseStoredCheckpoint([]byte(msg))
			if err != nil {
				return CosignedCheckpoint{}, err
			}
			cur, curID, counted = CosignedCheckpoint{Checkpoint: cp}, id, map[string]bool{}
		}
		c, k, err := VerifyCosignature(cur.Checkpoint, line, keys)
		if errors.Is(err, ErrUnknownWitness) {
			continue
		}
		if err != nil {
			return CosignedCheckpoint{}, err
		}
		cur.Cosignatures = append(cur.Cosignatures, c)
		counted[k.Text] = true
	}
	if err := rows.Err(); err != nil {
		return CosignedCheckpoint{}, fmt.Errorf("reading cosignatures: %w", err)
	}
	if curID >= 0 && len(counted) >= quorum {
		return cur, nil
	}
	return CosignedCheckpoint{}, ErrNotWitnessed
}

// ErrNotWitnessed reports that no checkpoint carries cosignatures by
// enough of the given witnesses.
var ErrNotWitnessed = errors.New("no checkpoint is cosigned by enough witnesses")

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// A rune cut in two leaves invalid bytes, which ToValidUTF8 drops.
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// StoredCosignature is one row of the cosignatures table, with the
// checkpoint it is stored beside, exactly as audit.db holds them: nothing
// here is verified. Neither table is part of the hashed log, so whoever
// administers the PC can add, change or delete rows; a reader counts a row
// only after VerifyCosignature with a key it trusts and InLog.
type StoredCosignature struct {
	Witness  string // the name the row claims
	KeyHash  uint32 // the key hash the row claims
	Line     string
	Received time.Time // when the service stored it (the PC's clock)
	// Checkpoint is the stored checkpoint the row is beside; Problem says
	// why there is none (the row points at a checkpoint audit.db does not
	// hold, or its note does not parse).
	Checkpoint Checkpoint
	Problem    string
	// InLog says the checkpoint names this log's origin and its root hash
	// is the root of this log's stored tree at its size: a cosignature on
	// it vouches for this log's first Size entries. (Verify checks the
	// stored tree against the entries.)
	InLog bool
}

// Cosignatures returns every stored cosignature, in the order the
// checkpoints were stored, for readers that judge each one (the compliance
// reports). It changes nothing.
func (l *Log) Cosignatures(ctx context.Context) ([]StoredCosignature, error) {
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("reading cosignatures: %w", err)
	}
	defer tx.Rollback()
	origin, _, err := getMeta(ctx, tx, "origin")
	if err != nil {
		return nil, err
	}
	size, err := treeSize(ctx, tx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT s.witness, s.key_hash, s.line, s.received, c.note
		FROM cosignatures s LEFT JOIN checkpoints c ON c.id = s.checkpoint ORDER BY s.checkpoint, s.witness, s.key_hash`)
	if err != nil {
		return nil, fmt.Errorf("reading cosignatures: %w", err)
	}
	var out []StoredCosignature
	for rows.Next() {
		var s StoredCosignature
		var keyHash int64
		var received string
		var msg sql.NullString
		if err := rows.Scan(&s.Witness, &keyHash, &s.Line, &received, &msg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading cosignatures: %w", err)
		}
		s.KeyHash, s.Received = uint32(keyHash), parseStateTime(received)
		switch cp, err := parseStoredCheckpoint([]byte(msg.String)); {
		case !msg.Valid:
			s.Problem = "it is stored beside a checkpoint audit.db does not hold"
		case err != nil:
			s.Problem = err.Error()
		default:
			s.Checkpoint = cp
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading cosignatures: %w", err)
	}
	// The tree hashes are read after the rows are closed: one query at a
	// time on the snapshot.
	for i := range out {
		cp := out[i].Checkpoint
		if out[i].Problem != "" || cp.Origin != origin || cp.Size < 1 || cp.Size > size {
			continue
		}
		root, err := tlog.TreeHash(cp.Size, hashReader(ctx, tx))
		if err != nil {
			return nil, fmt.Errorf("reading cosignatures: the tree at size %d: %w", cp.Size, err)
		}
		out[i].InLog = root == cp.Root
	}
	return out, nil
}
