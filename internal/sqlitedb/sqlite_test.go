package sqlitedb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var migrations = []string{
	`CREATE TABLE a (x INTEGER) STRICT`,
	`CREATE TABLE b (y TEXT) STRICT`,
}

func TestOpenMigratesAndIsPrivate(t *testing.T) {
	ctx := context.Background()
	// A folder name with the characters a DSN would misread.
	dir := filepath.Join(t.TempDir(), "odd ?#% name")
	os.Mkdir(dir, 0o700)
	path := filepath.Join(dir, "x.db")
	db, err := Open(ctx, path, migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Version(ctx, db); v != 1 {
		t.Errorf("Version after one migration = %d; want 1", v)
	}
	var mode string
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	var sync int
	db.QueryRow(`PRAGMA synchronous`).Scan(&sync)
	if mode != "wal" || sync != 2 {
		t.Errorf("journal_mode, synchronous = %s, %d; want wal, 2 (FULL)", mode, sync)
	}
	db.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// Reopening applies only what is new.
	db, err = Open(ctx, path, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Version(ctx, db); v != 2 {
		t.Errorf("Version after reopening with two migrations = %d; want 2", v)
	}
	db.Close()
	// A newer schema than the code knows is refused.
	if _, err := Open(ctx, path, migrations[:1]); err == nil || !strings.Contains(err.Error(), "newer than this carrel knows") {
		t.Errorf("Open(fewer migrations) = %v; want refusal", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if _, _, err := OpenReadOnly(ctx, path); !IsNotExist(err) {
		t.Errorf("OpenReadOnly(missing) = %v; want a not-exist error", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("OpenReadOnly created the file")
	}
	db, err := Open(ctx, path, migrations)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, v, err := OpenReadOnly(ctx, path)
	if err != nil || v != 2 {
		t.Fatalf("OpenReadOnly = %d, %v; want version 2", v, err)
	}
	defer ro.Close()
	if _, err := ro.Exec(`INSERT INTO a VALUES (1)`); err == nil {
		t.Error("a write through the read-only handle succeeded")
	}
}
