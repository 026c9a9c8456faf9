package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// migrations[i] takes audit.db from schema version i to i+1 (PRAGMA
// user_version). Only append.
//
// Entries are stored field by field, not as their encoding, so that they can
// be queried; Verify recomputes every leaf from these columns. hashes holds
// tlog's stored hashes by their storage index (tlog.StoredHashIndex): level
// 0 is the leaf hash of each entry, the levels above the complete subtrees.
// entries.once is Event.Once and is not hashed. keys lists every verifier key
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
}

// dsn builds a go-sqlite3 data source name. Writers take the write lock at
// BEGIN (_txlock=immediate) so that two processes appending to one log wait
// for each other instead of failing to upgrade a read lock.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_foreign_keys", "on")
		q.Set("_txlock", "immediate")
	}
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + q.Encode()
}

// openDB opens audit.db: for writing (creating and migrating it), or only for
// reading, in which case it must exist and be fully migrated.
func openDB(ctx context.Context, path string, readOnly bool) (*sql.DB, error) {
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("no audit log at %q: %w", path, ErrNotExist)
			}
			return nil, err
		}
	} else {
		// sqlite creates files with the umask's mode; create it private first.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	db, err := sql.Open("sqlite3", dsn(path, readOnly))
	if err != nil {
		return nil, err
	}
	if readOnly {
		err = checkSchema(ctx, db)
	} else {
		db.SetMaxOpenConns(1) // one writer per process; Log.mu orders them
		err = migrate(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if v > len(migrations) {
		return v, fmt.Errorf("schema version %d is newer than this carrel knows (%d)", v, len(migrations))
	}
	return v, nil
}

func checkSchema(ctx context.Context, db *sql.DB) error {
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v < len(migrations) {
		return fmt.Errorf("schema version %d is older than this carrel's (%d): %w", v, len(migrations), ErrNeedsUpgrade)
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", i+1, err)
		}
		// PRAGMA takes no parameters; i+1 is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			return fmt.Errorf("setting schema version %d: %w", i+1, err)
		}
	}
	return tx.Commit()
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
