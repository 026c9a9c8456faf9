package booking

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrNotExist: OpenReadOnly found no register at the path.
var ErrNotExist = errors.New("booking register does not exist")

// OpenReadOnly opens an existing register for reading only, without the
// patron secret: List and Stats work, every write fails. It is for readers
// that must not be able to change or create bookings — the court-order
// export — and it runs beside the service, which keeps writing.
//
// The register must exist and have the schema this carrel knows: an older
// one is upgraded only by the service, a newer one needs a newer carrel.
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening booking register %q: %w", path, ErrNotExist)
		}
		return nil, fmt.Errorf("opening booking register %q: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	q.Set("_busy_timeout", "5000")
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite3", "file:"+esc+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening booking register %q: %w", path, err)
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening booking register %q: reading schema version: %w", path, err)
	}
	if v != len(migrations) {
		db.Close()
		return nil, fmt.Errorf("opening booking register %q: schema version %d, this carrel reads %d; start the service once (it upgrades the register) or use a matching carrel", path, v, len(migrations))
	}
	// No secret: a Start through this Store could not compute a patron
	// HMAC, and the read-only connection refuses the write anyway.
	return &Store{db: db, now: time.Now}, nil
}
