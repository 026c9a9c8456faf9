package booking

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
)

// ErrNotExist is returned by OpenReadOnly when it finds no register at the
// path.
var ErrNotExist = errors.New("booking register does not exist")

// OpenReadOnly opens an existing register for reading only, without the
// patron secret: List and Stats work, every write fails. It is for readers
// that must not be able to change or create bookings — the court-order
// export — and it runs beside the service, which keeps writing.
//
// The register must exist and have the schema this carrel knows: an older
// one is upgraded only by the service, a newer one needs a newer carrel.
func OpenReadOnly(path string) (*Store, error) {
	db, v, err := sqlitedb.OpenReadOnly(context.Background(), path)
	if sqlitedb.IsNotExist(err) {
		return nil, fmt.Errorf("opening booking register %q: %w", path, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("opening booking register %q: %w", path, err)
	}
	if v != len(migrations) {
		db.Close()
		return nil, fmt.Errorf("opening booking register %q: schema version %d, this carrel reads %d; start the service once (it upgrades the register) or use a matching carrel", path, v, len(migrations))
	}
	// No secret: a Start through this Store could not compute a patron
	// HMAC, and the read-only connection refuses the write anyway.
	return &Store{db: db, now: time.Now}, nil
}
