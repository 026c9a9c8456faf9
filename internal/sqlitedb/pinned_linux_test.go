package sqlitedb

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestOpenThroughHeldFolder: carrel opens its data folder once and opens
// files through the held descriptor (/proc/self/fd/N/bookings.db, see
// config.OpenDataDir). SQLite names its -wal, -shm and -journal files
// after the path it was given, after resolving links in it; this shows
// that they, and every later connection, stay in the folder held even
// when it is renamed and another folder takes its name.
func TestOpenThroughHeldFolder(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	real := filepath.Join(base, "data")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	held := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd()))

	db, err := Open(ctx, filepath.Join(held, "x.db"), migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0) // every statement on a new connection, which opens the files again
	if _, err := db.Exec(`INSERT INTO a VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	// The folder moves; another takes its name.
	moved := filepath.Join(base, "moved")
	if err := os.Rename(real, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx) // a connection opened after the move
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO a VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"x.db", "x.db-wal", "x.db-shm"} {
		if _, err := os.Stat(filepath.Join(moved, f)); err != nil {
			t.Errorf("%s is not in the held folder: %v", f, err)
		}
	}

	// A rollback journal, for the same reason.
	q := url.Values{}
	q.Set("_journal_mode", "DELETE")
	q.Set("_txlock", "immediate")
	jdb, err := sql.Open("sqlite3", dsn(filepath.Join(held, "y.db"), q))
	if err != nil {
		t.Fatal(err)
	}
	defer jdb.Close()
	if _, err := jdb.Exec(`CREATE TABLE j (x)`); err != nil {
		t.Fatal(err)
	}
	tx, err := jdb.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO j VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(moved, "y.db-journal")); err != nil {
		t.Errorf("the rollback journal is not in the held folder: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	if names, _ := os.ReadDir(real); len(names) != 0 {
		t.Errorf("the folder that took the old name holds %v; want nothing", names)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM a`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows = %d, %v; want both", n, err)
	}
}
