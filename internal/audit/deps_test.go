package audit

import "testing"

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
