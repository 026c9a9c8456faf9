package audit

import (
	"go/build"
	"strings"
	"testing"
)

// The audit log is a leaf: it imports no other carrel package (doc.go) but
// internal/sqlitedb, which opens SQLite files, and internal/keyfile, which
// writes its key; neither imports any carrel package (internal/layering_test.go
// and keyfile's own test say so). So nothing the log does can reach bookings,
// traffic or cases, and every other package can depend on it.
func TestImportsNoCarrelPackage(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkg.Imports) < 5 {
			t.Fatalf("%s: found %d imports; want the package's", goos, len(pkg.Imports))
		}
		for _, imp := range pkg.Imports {
			switch imp {
			case "github.com/carrel-lib/carrel/internal/sqlitedb", "github.com/carrel-lib/carrel/internal/keyfile":
				continue
			}
			if strings.HasPrefix(imp, "github.com/carrel-lib/carrel/") {
				t.Errorf("%s: audit imports %s", goos, imp)
			}
		}
	}
}

// Acknowledged means durable: the writer runs in WAL mode with
// synchronous=FULL, so a committed entry survives power loss.
func TestWriterPragmas(t *testing.T) {
	l, _ := testLog(t)
	var mode string
	var sync int
	if err := l.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := l.w.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
}
