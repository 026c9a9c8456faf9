// Package sqlitedb opens carrel's SQLite files — bookings.db, audit.db,
// traffic.db — the one way each of them needs, so that the promises they
// share are kept in one place: a file private to its owner from the first
// byte, WAL with synchronous=FULL (a commit acknowledged is a commit that
// survives power loss), a busy timeout so a second process (the CLI, an
// export) waits instead of failing, write transactions that take the lock
// at BEGIN, and a schema brought up to date by numbered migrations kept in
// PRAGMA user_version.
//
// It holds no schema and no data of its own, and imports no carrel package.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"
)

// busyTimeoutMS is how long a connection waits for another's lock.
const busyTimeoutMS = "10000"

// Open opens the database at path for reading and writing, creating it
// (mode 0600) when it does not exist, and applies the migrations it has
// not seen yet, all in one transaction. migrations[i] brings the schema from
// version i to i+1; a released migration is never edited.
func Open(ctx context.Context, path string, migrations []string) (*sql.DB, error) {
	// SQLite creates files with the umask's mode; create it private first.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	q := url.Values{}
	q.Set("_busy_timeout", busyTimeoutMS)
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "on")
	// Writers take the write lock at BEGIN, so that two processes writing
	// wait for each other instead of failing to upgrade a read lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", dsn(path, q))
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenReadOnly opens an existing database for reading only and returns its
// schema version for the caller to judge. It never creates or changes the
// file; a missing file is an error wrapping fs.ErrNotExist.
func OpenReadOnly(ctx context.Context, path string) (*sql.DB, int, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, 0, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", busyTimeoutMS)
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	db, err := sql.Open("sqlite3", dsn(path, q))
	if err != nil {
		return nil, 0, err
	}
	v, err := Version(ctx, db)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, v, nil
}

// IsNotExist reports whether err says the database file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Querier is what *sql.DB and *sql.Tx have in common for reading.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Version reads the schema version (PRAGMA user_version).
func Version(ctx context.Context, q Querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	v, err := Version(ctx, tx)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this carrel knows (%d); upgrade carrel", v, len(migrations))
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

// dsn builds a go-sqlite3 data source name. The path is escaped only where
// the driver would otherwise read it as the start of parameters.
func dsn(path string, q url.Values) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + q.Encode()
}
