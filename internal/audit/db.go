package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
)

// migrations[i] takes audit.db from schema version i to i+1 (PRAGMA
// user_version). Only append.
//
// Entries are stored field by field, not as their encoding, so that they can
// be queried; Verify recomputes every leaf from these columns. hashes holds
// tlog's stored hashes by their storage index (tlog.StoredHashIndex): level
// 0 is the leaf hash of each entry, the levels above the complete subtrees.
// entries.once is Event.Once and is not hashed; entries.checkpoint is
// Entry.Checkpoint (NULL in version 1 entries). keys lists every verifier key
// whose signer ever signed a checkpoint of this log; each was recorded by a
// key.created entry.
var migrations = []string{
	`CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE entries (
		seq   INTEGER PRIMARY KEY,
		v     INTEGER NOT NULL,
		time  TEXT NOT NULL,
		kind  TEXT NOT NULL,
		actor TEXT NOT NULL,
		once  TEXT UNIQUE
	);
	CREATE INDEX entries_time ON entries (time);
	CREATE INDEX entries_kind ON entries (kind, time);
	CREATE TABLE fields (
		seq   INTEGER NOT NULL REFERENCES entries (seq),
		key   TEXT NOT NULL,
		type  TEXT NOT NULL,
		value TEXT NOT NULL,
		PRIMARY KEY (seq, key)
	) WITHOUT ROWID;
	CREATE INDEX fields_value ON fields (key, value);
	CREATE TABLE hashes (
		id   INTEGER PRIMARY KEY,
		hash BLOB NOT NULL
	);
	CREATE TABLE checkpoints (
		id   INTEGER PRIMARY KEY,
		size INTEGER NOT NULL,
		made TEXT NOT NULL,
		note TEXT NOT NULL
	);
	CREATE TABLE keys (
		id       INTEGER PRIMARY KEY,
		verifier TEXT NOT NULL UNIQUE,
		added    TEXT NOT NULL
	);`,
	// Version 2 entries record the size of the latest checkpoint (Entry);
	// version 1 entries keep NULL.
	`ALTER TABLE entries ADD COLUMN checkpoint INTEGER;`,
	// Witnesses (witness.go): cosignatures holds each cosignature a witness
	// returned, beside the checkpoint it signs, byte for byte as received;
	// witnesses holds what the service knows of each configured witness:
	// the tree size it last cosigned (the "old" of the next add-checkpoint),
	// its last error, and a refusal waiting for an administrator's
	// acknowledgement. Neither table is part of the hashed log: a
	// cosignature is checked against the witness's key, and a refusal is
	// recorded as a witness.refused entry.
	`CREATE TABLE cosignatures (
		checkpoint INTEGER NOT NULL REFERENCES checkpoints (id),
		witness    TEXT NOT NULL,
		key_hash   INTEGER NOT NULL,
		line       TEXT NOT NULL,
		signed     TEXT NOT NULL,
		received   TEXT NOT NULL,
		PRIMARY KEY (checkpoint, witness, key_hash)
	) WITHOUT ROWID;
	CREATE TABLE witnesses (
		name           TEXT PRIMARY KEY,
		key            TEXT NOT NULL,
		size           INTEGER NOT NULL DEFAULT 0,
		cosigned       TEXT NOT NULL DEFAULT '',
		error          TEXT NOT NULL DEFAULT '',
		error_at       TEXT NOT NULL DEFAULT '',
		refused_why    TEXT NOT NULL DEFAULT '',
		refused_detail TEXT NOT NULL DEFAULT '',
		refused_at     TEXT NOT NULL DEFAULT '',
		refused_size   INTEGER NOT NULL DEFAULT 0,
		refused_log    INTEGER NOT NULL DEFAULT 0,
		refused_entry  INTEGER NOT NULL DEFAULT -1,
		acked_at       TEXT NOT NULL DEFAULT '',
		acked_by       TEXT NOT NULL DEFAULT ''
	) WITHOUT ROWID;`,
}

// openDB opens audit.db: for writing (creating and migrating it), or only for
// reading, in which case it must exist and be fully migrated.
func openDB(ctx context.Context, path string, readOnly bool) (*sql.DB, error) {
	if !readOnly {
		db, err := sqlitedb.Open(ctx, path, migrations)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1) // one writer per process; Log.mu orders them
		return db, nil
	}
	db, v, err := sqlitedb.OpenReadOnly(ctx, path)
	if sqlitedb.IsNotExist(err) {
		return nil, fmt.Errorf("no audit log at %q: %w", path, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case v > len(migrations):
		err = fmt.Errorf("schema version %d is newer than this carrel knows (%d)", v, len(migrations))
	case v < len(migrations):
		err = fmt.Errorf("schema version %d is older than this carrel's (%d): %w", v, len(migrations), ErrNeedsUpgrade)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getMeta(ctx context.Context, q querier, key string) (string, bool, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", key, err)
	}
	return v, true, nil
}

// treeSize is the number of entries: one more than the highest sequence
// number. Verify, not this, notices gaps.
func treeSize(ctx context.Context, q querier) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading the log's size: %w", err)
	}
	return n, nil
}
