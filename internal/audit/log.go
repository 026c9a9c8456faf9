package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrNotExist: there is no audit log at the path (read-only Open).
	ErrNotExist = errors.New("audit log does not exist")
	// ErrNeedsUpgrade: the log was written by an older carrel and must be
	// opened for writing once (the service does) before it can be read.
	ErrNeedsUpgrade = errors.New("audit log needs an upgrade")
	// ErrReadOnly: the Log was opened read-only and cannot record or sign.
	ErrReadOnly = errors.New("audit log is open read-only")
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("audit log is closed")
	// ErrNoCheckpoint: the log has not signed a checkpoint yet.
	ErrNoCheckpoint = errors.New("audit log has no checkpoint yet")
)

// Options configure Open.
type Options struct {
	// Origin names the log in its checkpoints, e.g. "carrel/pc-01". It is
	// used when the log is created; an existing log keeps the origin it was
	// created with, since it is the log's identity (renaming a PC must not
	// make its old checkpoints unverifiable). Required unless ReadOnly.
	Origin string
	// KeyPath is the Ed25519 signing key file. Open creates it (private to
	// root or to SYSTEM and Administrators) when it is missing and records a
	// key.created entry whenever the log sees a key for the first time.
	// Required unless ReadOnly.
	KeyPath string
	// Now is the clock for entry and checkpoint times; time.Now by default.
	Now func() time.Time
	// ReadOnly opens an existing log for list, verify, checkpoint and prove
	// while the service holds it open for writing. No key is needed.
	ReadOnly bool
}

// Log is the audit log in one SQLite file. It is safe for concurrent use,
// and several processes may open the same file: every append takes
// SQLite's write lock and reads the tree's size inside that transaction.
type Log struct {
	path   string
	ro     bool
	now    func() time.Time
	origin string
	key    signingKey // zero when read-only
	vkey   string     // the newest verifier key of the log

	w *sql.DB // nil when read-only; one connection
	r *sql.DB // read-only connections: readers never wait for the writer (WAL)

	grown  chan struct{} // see Grown
	signed chan struct{} // see Signed

	mu     sync.Mutex // orders this process's writers; guards closed
	closed bool
}

// Open opens the audit log at path, creating and migrating it unless
// opts.ReadOnly.
func Open(path string, opts Options) (*Log, error) {
	l, err := open(context.Background(), path, opts)
	if err != nil {
		return nil, fmt.Errorf("opening audit log %q: %w", path, err)
	}
	return l, nil
}

func open(ctx context.Context, path string, opts Options) (*Log, error) {
	l := &Log{path: path, ro: opts.ReadOnly, now: opts.Now, grown: make(chan struct{}, 1), signed: make(chan struct{}, 1)}
	if l.now == nil {
		l.now = time.Now
	}
	if !l.ro {
		if err := checkOrigin(opts.Origin); err != nil {
			return nil, err
		}
		if opts.KeyPath == "" {
			return nil, fmt.Errorf("no signing key path given")
		}
		testHookOpen("migrate")
		w, err := openDB(ctx, path, false)
		if err != nil {
			return nil, err
		}
		l.w = w
	}
	r, err := openDB(ctx, path, true)
	if err != nil {
		l.closeDBs()
		return nil, err
	}
	l.r = r
	if l.ro {
		err = l.loadReadOnly(ctx)
	} else {
		err = l.init(ctx, opts)
	}
	if err != nil {
		l.closeDBs()
		return nil, err
	}
	return l, nil
}

// init settles the log's origin and its signing key, recording the key in a
// key.created entry the first time this log sees it. A log it creates gets
// its first checkpoint in the same transaction: from then on a log with
// entries and no checkpoint is one whose checkpoints were deleted, and the
// signer refuses to sign it (tx.checkpoint).
func (l *Log) init(ctx context.Context, opts Options) error {
	origin, ok, err := getMeta(ctx, l.w, "origin")
	if err != nil {
		return err
	}
	if !ok {
		origin = opts.Origin
	}
	testHookOpen("key")
	k, err := loadOrCreateKey(opts.KeyPath, origin)
	if err != nil {
		return err
	}
	if k.signer.Name() != origin {
		return fmt.Errorf("signing key %q is named %q, but the log's origin is %q; move the key aside and a new one is made and recorded",
			opts.KeyPath, k.signer.Name(), origin)
	}
	l.origin, l.key, l.vkey = origin, k, k.verifier
	testHookOpen("init")
	return l.Update(ctx, func(tx *Tx) error {
		err := tx.initKey(ctx, origin, k)
		testHookOpen("commit")
		return err
	})
}

func (t *Tx) initKey(ctx context.Context, origin string, k signingKey) error {
	size, err := treeSize(ctx, t.tx)
	if err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('origin', ?)`, origin); err != nil {
		return fmt.Errorf("storing origin: %w", err)
	}
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE verifier = ?`, k.verifier).Scan(&n); err != nil {
		return fmt.Errorf("reading keys: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO keys (verifier, added) VALUES (?, ?)`,
		k.verifier, formatEntryTime(t.log.now())); err != nil {
		return fmt.Errorf("storing verifier key: %w", err)
	}
	_, err = t.Record(ctx, Event{Kind: KeyCreated, Actor: "audit",
		Fields: []Field{Token("key", "audit-signing"), Hash("fingerprint", k.fingerprint)}})
	if err != nil || size > 0 {
		return err
	}
	_, _, err = t.checkpoint(ctx, true)
	return err
}

func (l *Log) loadReadOnly(ctx context.Context) error {
	origin, ok, err := getMeta(ctx, l.r, "origin")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the log was never opened for writing (no origin)")
	}
	l.origin = origin
	err = l.r.QueryRowContext(ctx, `SELECT verifier FROM keys ORDER BY id DESC LIMIT 1`).Scan(&l.vkey)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reading keys: %w", err)
	}
	return nil
}

// Origin returns the log's origin, the first line of its checkpoints.
func (l *Log) Origin() string { return l.origin }

// Verifier returns the verifier key of the log's current signing key, in
// the form note.NewVerifier reads and `carrel audit key` prints. It is ""
// for a read-only log that never had a key.
func (l *Log) Verifier() string { return l.vkey }

// Verifiers returns the verifier key of every signing key that ever
// signed this log's checkpoints, oldest first: a bundle exported before
// the key was replaced is signed by an older one.
func (l *Log) Verifiers(ctx context.Context) ([]string, error) {
	rows, err := l.r.QueryContext(ctx, `SELECT verifier FROM keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("reading signing keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Path returns the file the log is in.
func (l *Log) Path() string { return l.path }

// Tx is one write transaction on audit.db. Entries recorded through it are
// committed, and their sequence numbers valid, only when the function given
// to Update returns nil.
type Tx struct {
	log      *Log
	tx       *sql.Tx
	appended bool // an entry was recorded
	signed   bool // a checkpoint was signed
}

// SQL returns the underlying transaction, for a change to a table kept in
// audit.db that must commit or fail together with its entry. Such tables
// are added through this package's migrations.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// Update runs fn in one write transaction and commits it if fn returns nil.
// The commit is durable (WAL, synchronous=FULL) before Update returns. fn
// must record through tx, never through the Log's own methods, which would
// wait for this transaction forever.
func (l *Log) Update(ctx context.Context, fn func(*Tx) error) error {
	if l.ro {
		return ErrReadOnly
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting audit transaction: %w", err)
	}
	t := &Tx{log: l, tx: tx}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing audit transaction: %w", err)
	}
	if t.appended {
		select {
		case l.grown <- struct{}{}:
		default: // one pending signal says it all
		}
	}
	if t.signed {
		select {
		case l.signed <- struct{}{}:
		default:
		}
	}
	return nil
}

// Grown receives a value after a commit of this Log added entries; at most
// one is pending. The service waits on it to sign a checkpoint soon after
// the log grew, so that verify finds no entry without a signed checkpoint
// for long. Entries other processes add are not seen: they sign their own
// (Close does).
func (l *Log) Grown() <-chan struct{} { return l.grown }

// Signed receives a value after this Log signed a checkpoint; at most one
// is pending. The service's witness pusher waits on it to push the new
// checkpoint at once. Checkpoints other processes sign are not seen.
func (l *Log) Signed() <-chan struct{} { return l.signed }

// Record appends e and returns its sequence number once the entry is on
// disk: an acknowledged entry survives a crash. With e.Once set, a second
// Record of the same Once adds nothing and returns the first's number (the
// event itself is not compared).
func (l *Log) Record(ctx context.Context, e Event) (seq int64, err error) {
	err = l.Update(ctx, func(tx *Tx) error {
		seq, err = tx.Record(ctx, e)
		return err
	})
	if err != nil {
		return -1, err
	}
	return seq, nil
}

// maxOnce bounds Event.Once.
const maxOnce = 256

// Record appends e inside the transaction. *Tx is a Recorder, so code that
// takes one can record into a transaction it shares.
func (t *Tx) Record(ctx context.Context, e Event) (int64, error) {
	if err := e.Check(); err != nil {
		return -1, err
	}
	if len(e.Once) > maxOnce {
		return -1, fmt.Errorf("audit: %s: once longer than %d bytes", e.Kind, maxOnce)
	}
	if e.Once != "" {
		var seq int64
		err := t.tx.QueryRowContext(ctx, `SELECT seq FROM entries WHERE once = ?`, e.Once).Scan(&seq)
		if err == nil {
			return seq, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return -1, fmt.Errorf("recording %s: looking up once: %w", e.Kind, err)
		}
	}
	seq, err := treeSize(ctx, t.tx)
	if err != nil {
		return -1, fmt.Errorf("recording %s: %w", e.Kind, err)
	}
	cp, err := latestSize(ctx, t.tx)
	if err != nil {
		return -1, fmt.Errorf("recording %s: %w", e.Kind, err)
	}
	if err := t.insert(ctx, entryFromEvent(seq, cp, t.log.now(), e), e.Once); err != nil {
		return -1, fmt.Errorf("recording %s as entry %d: %w", e.Kind, seq, err)
	}
	t.appended = true
	return seq, nil
}

// insert stores ent, its fields and the tree hashes it completes.
func (t *Tx) insert(ctx context.Context, ent Entry, once string) error {
	leaf, err := ent.Encode()
	if err != nil {
		return err
	}
	hashes, err := tlog.StoredHashes(ent.Seq, leaf, hashReader(ctx, t.tx))
	if err != nil {
		return fmt.Errorf("computing tree hashes: %w", err)
	}
	var onceArg any
	if once != "" {
		onceArg = once
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO entries (seq, v, checkpoint, time, kind, actor, once) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ent.Seq, ent.Version, ent.Checkpoint, formatEntryTime(ent.Time), string(ent.Kind), ent.Actor, onceArg)
	if err != nil {
		return err
	}
	for _, f := range ent.Fields {
		_, err = t.tx.ExecContext(ctx, `INSERT INTO fields (seq, key, type, value) VALUES (?, ?, ?, ?)`,
			ent.Seq, f.Key, f.Type.String(), f.Value)
		if err != nil {
			return err
		}
	}
	base := tlog.StoredHashIndex(0, ent.Seq)
	for i, h := range hashes {
		_, err = t.tx.ExecContext(ctx, `INSERT INTO hashes (id, hash) VALUES (?, ?)`, base+int64(i), h[:])
		if err != nil {
			return fmt.Errorf("storing tree hash %d: %w (was the log truncated? run carrel audit verify)", base+int64(i), err)
		}
	}
	return nil
}

// hashReader reads stored tree hashes inside q's snapshot.
func hashReader(ctx context.Context, q querier) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, id := range indexes {
			var b []byte
			err := q.QueryRowContext(ctx, `SELECT hash FROM hashes WHERE id = ?`, id).Scan(&b)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("tree hash %d is missing", id)
			}
			if err != nil {
				return nil, fmt.Errorf("reading tree hash %d: %w", id, err)
			}
			if len(b) != tlog.HashSize {
				return nil, fmt.Errorf("tree hash %d has %d bytes", id, len(b))
			}
			copy(out[i][:], b)
		}
		return out, nil
	})
}

// Size returns the number of entries in the log.
func (l *Log) Size(ctx context.Context) (int64, error) { return treeSize(ctx, l.r) }

// Close signs a last checkpoint if the log grew since the latest one (the
// shutdown checkpoint) and closes the file.
func (l *Log) Close() error {
	var err error
	if !l.ro {
		if _, _, cerr := l.CheckpointIfGrown(context.Background()); cerr != nil && !errors.Is(cerr, ErrClosed) {
			err = fmt.Errorf("signing the shutdown checkpoint: %w", cerr)
		}
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	return errors.Join(err, l.closeDBs())
}

func (l *Log) closeDBs() error {
	var errs []error
	for _, db := range []*sql.DB{l.w, l.r} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// testHookOpen lets the kill test report, from a child process, which step
// of opening a writable log it has reached, so that it can kill the child
// inside Open on purpose rather than by luck of timing.
var testHookOpen = func(step string) {}
