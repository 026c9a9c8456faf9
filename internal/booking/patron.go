package booking

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// ErrNoSecret: the store was opened without the patron secret (read-only),
// so it cannot find a card's bookings.
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

// LoadOrCreateSecret reads the patron HMAC key at path, creating it (mode
// 0600, exclusively) when it does not exist. created tells the caller to
// record that a key was made.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != secretLen {
			return nil, false, fmt.Errorf("patron secret %q is %d bytes, want %d: the file is damaged; restore it from backup (a new one would make old bookings unmatchable)", path, len(b), secretLen)
		}
		return b, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("reading patron secret: %w", err)
	}
	b = make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, false, fmt.Errorf("creating patron secret: %w", err)
	}
	if err := writeSecret(path, b); err != nil {
		return nil, false, fmt.Errorf("creating patron secret %q: %w", path, err)
	}
	return b, true, nil
}

// writeSecret creates path with O_EXCL so two starts never race to different
// keys, and syncs it so an acknowledged booking's HMAC key is durable too.
func writeSecret(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
