package seal

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// migrations are applied in order; PRAGMA user_version holds how many ran.
// Never edit a released step: add a new one.
var migrations = []string{
	// 1: segments, legal holds, audit outbox. Times are Unix nanoseconds
	// UTC. first_ts/last_ts are the record times; NULL while nothing is
	// known (an open or lost segment). sha256 is NULL unless sealed.
	`CREATE TABLE segments (
		name      TEXT PRIMARY KEY,
		seq       INTEGER NOT NULL UNIQUE,
		case_id   TEXT NOT NULL,
		format    TEXT NOT NULL CHECK (format IN ('jsonl', 'pcapng')),
		state     TEXT NOT NULL CHECK (state IN ('open', 'sealed', 'lost', 'deleted')),
		opened_at INTEGER NOT NULL,
		first_ts  INTEGER,
		last_ts   INTEGER,
		records   INTEGER NOT NULL DEFAULT 0,
		size      INTEGER NOT NULL DEFAULT 0,
		sha256    TEXT,
		sealed_at INTEGER,
		ended_at  INTEGER
	);
	CREATE INDEX segments_case ON segments (case_id, opened_at);
	CREATE INDEX segments_state ON segments (state);
	CREATE TABLE holds (
		order_sha256 TEXT NOT NULL,
		order_ref    TEXT NOT NULL,
		segment      TEXT NOT NULL REFERENCES segments (name),
		placed_at    INTEGER NOT NULL,
		PRIMARY KEY (order_sha256, segment)
	);
	CREATE INDEX holds_segment ON holds (segment);
	CREATE TABLE outbox (
		id     INTEGER PRIMARY KEY,
		once   TEXT NOT NULL UNIQUE,
		kind   TEXT NOT NULL,
		actor  TEXT NOT NULL,
		fields TEXT NOT NULL
	);`,
}

// openIndex opens traffic.db in WAL mode with synchronous=FULL, so a
// committed index row survives power loss, and migrates it.
func openIndex(path string) (*sql.DB, error) {
	// sqlite creates files with the umask's mode; create it private first.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening traffic index: %w", err)
	}
	f.Close()
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening traffic index %q: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening traffic index %q: %w", path, err)
	}
	return db, nil
}

func migrate(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this carrel knows (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(migrations[i]); err != nil {
			return fmt.Errorf("migrating to schema version %d: %w", i+1, err)
		}
		// PRAGMA takes no parameters; i+1 is our own integer.
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			return fmt.Errorf("setting schema version %d: %w", i+1, err)
		}
	}
	return tx.Commit()
}

// fileSize returns the size of path, or -1 when it does not exist.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
