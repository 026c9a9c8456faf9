package booking

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/carrel-lib/carrel/internal/keyfile"
)

// secretLen is the size of the per-install patron HMAC key.
const secretLen = 32

// patronHMAC keys the card number so that the register can tell two
// bookings of one card apart from others without holding the number. It is
// still personal data (the library can recompute it from a card).
func (s *Store) patronHMAC(card string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(card))
	return m.Sum(nil)
}

// PatronHMAC returns the stored form of card, for tests and for answering a
// patron's request to see their own data.
func (s *Store) PatronHMAC(card string) []byte { return s.patronHMAC(card) }

// ErrNoSecret reports that the store was opened without the patron secret
// (read-only), so it cannot find a card's bookings.
var ErrNoSecret = errors.New("the booking register was opened without the patron secret")

// ByPatron returns every stored booking made with card, oldest first: what
// the library shows a patron who asks for their data. The card is keyed
// with the register's secret and compared with the stored HMACs; it is
// neither stored nor logged.
func (s *Store) ByPatron(ctx context.Context, card string) ([]Booking, error) {
	if err := ValidatePatron(card); err != nil {
		return nil, err
	}
	if len(s.secret) == 0 {
		return nil, fmt.Errorf("finding a patron's bookings: %w", ErrNoSecret)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+columns+` FROM bookings WHERE patron_hmac = ? ORDER BY start_ms, id`, s.patronHMAC(card))
	if err != nil {
		return nil, fmt.Errorf("finding a patron's bookings: %w", err)
	}
	defer rows.Close()
	out := []Booking{}
	for rows.Next() {
		b, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("finding a patron's bookings: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("finding a patron's bookings: %w", err)
	}
	return out, nil
}

// ErrSecretDamaged reports that the patron key file is there but does not
// hold a key (it is empty, or of the wrong size). carrel never replaces it by
// itself: see LoadOrCreateSecret.
var ErrSecretDamaged = errors.New("patron key damaged")

// LoadOrCreateSecret reads the patron HMAC key at path, creating it (mode
// 0600) when it does not exist. created tells the caller to record that a
// key was made.
//
// The key is created whole or not at all (package keyfile), so a start
// killed while making it leaves no key and the next start makes one. A
// key found empty or of the wrong size (left by an older carrel killed
// while creating it, or damaged) is an error wrapping ErrSecretDamaged
// that says what to do; it is never silently replaced, since a new key
// would orphan every card hash stored with the old one.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	b, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, false, err
	}
	b = make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, false, fmt.Errorf("creating patron key: %w", err)
	}
	err = keyfile.Create(path, b, "")
	if errors.Is(err, fs.ErrExist) {
		// Another start made it first: its key is the key.
		b, err = readSecret(path)
		return b, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating patron key %q: %w", path, err)
	}
	return b, true, nil
}

// readSecret reads the key at path; an error wraps fs.ErrNotExist when
// there is none, ErrSecretDamaged when the file holds no key.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading patron key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, secretLen+1))
	if err != nil {
		return nil, fmt.Errorf("reading patron key %q: %w", path, err)
	}
	if len(b) == secretLen {
		return b, nil
	}
	what := fmt.Sprintf("is %d bytes, not %d", len(b), secretLen)
	switch {
	case len(b) == 0:
		what = "is empty"
	case len(b) > secretLen:
		what = fmt.Sprintf("is longer than %d bytes", secretLen)
	}
	return nil, &damagedError{fmt.Sprintf("patron key %q %s (an older carrel stopped while creating it, or the file was damaged): "+
		"restore it from a backup of the data folder; only if there is none, delete it and carrel makes a new key at its next start — "+
		"but every booking already stored keeps its card hash made with the old key, so `carrel booking list --patron` "+
		"will no longer find those bookings for a patron's card (an access request would wrongly find none)",
		path, what)}
}

// damagedError is a patron key file that holds no key.
type damagedError struct{ msg string }

func (e *damagedError) Error() string        { return e.msg }
func (e *damagedError) Is(target error) bool { return target == ErrSecretDamaged }
