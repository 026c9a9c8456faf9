package seal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
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
	db, err := sqlitedb.Open(context.Background(), path, migrations)
	if err != nil {
		return nil, fmt.Errorf("opening traffic index %q: %w", path, err)
	}
	return db, nil
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
