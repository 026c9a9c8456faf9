package seal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/carrel-lib/carrel/internal/audit"
)

// CaseEnd tells Purge when a case ended. ok is false while the case runs,
// and for a case the caller knows nothing about: Purge then keeps its
// segments, because deleting evidence early cannot be undone.
type CaseEnd func(caseID string) (end time.Time, ok bool)

// Purged is what one Purge run deleted.
type Purged struct {
	Deleted  int
	Bytes    int64
	From, To time.Time // record time range of what was deleted
}

// Purge deletes the sealed segments whose case ended more than retention
// before now, except those under a legal hold (G6). The rows stay, in state
// deleted, as documentation that the retention period ran out; a run that
// deletes something records traffic.retention with what, how many and
// which time range.
func (s *Store) Purge(ctx context.Context, now time.Time, caseEnd CaseEnd, retention time.Duration) (Purged, error) {
	var p Purged
	if s.rec == nil {
		return p, errInspectOnly
	}
	if retention < 0 {
		return p, fmt.Errorf("traffic retention %v: must not be negative", retention)
	}
	var names []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Inside the (immediate) transaction, so a hold placed meanwhile
		// either lands first and protects the segment, or waits.
		rows, err := tx.QueryContext(ctx, `SELECT name, case_id, size, first_ts, last_ts FROM segments s
			WHERE state = 'sealed' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.segment = s.name)
			ORDER BY seq`)
		if err != nil {
			return err
		}
		ends := map[string]bool{} // case → expired
		for rows.Next() {
			var name, caseID string
			var size int64
			var first, last sql.NullInt64
			if err := rows.Scan(&name, &caseID, &size, &first, &last); err != nil {
				rows.Close()
				return err
			}
			expired, seen := ends[caseID]
			if !seen {
				end, ok := caseEnd(caseID)
				expired = ok && !now.Before(end.Add(retention))
				ends[caseID] = expired
			}
			if !expired {
				continue
			}
			names = append(names, name)
			p.Deleted++
			p.Bytes += size
			if f := nullTime(first); !f.IsZero() && (p.From.IsZero() || f.Before(p.From)) {
				p.From = f
			}
			if l := nullTime(last); l.After(p.To) {
				p.To = l
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if p.Deleted == 0 {
			return nil
		}
		for _, name := range names {
			if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'deleted', ended_at = ? WHERE name = ?`,
				now.UnixNano(), name); err != nil {
				return err
			}
		}
		fields := []audit.Field{audit.Int("deleted", int64(p.Deleted)), audit.Int("bytes", p.Bytes)}
		if !p.From.IsZero() {
			fields = append(fields, audit.Time("from", p.From), audit.Time("to", p.To))
		}
		return s.enqueue(ctx, tx, audit.Event{Kind: audit.TrafficRetention, Once: randomOnce(audit.TrafficRetention), Fields: fields})
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purging traffic: %w", err)
	}
	// The rows say deleted: a crash from here on leaves files that the next
	// recovery removes.
	s.stored.Add(-p.Bytes)
	var errs []error
	for _, name := range names {
		if err := removeDurable(s.pathOf(name)); err != nil {
			errs = append(errs, fmt.Errorf("removing expired segment %s: %w", name, err))
		}
	}
	if err := s.Forward(ctx); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

// ErrNoHold is returned by Release when it finds no legal hold under the
// order.
var ErrNoHold = errors.New("no legal hold under this order")

// maxOrderRef bounds an order reference; court references are short.
const maxOrderRef = 200

// orderKey checks an order reference and returns its SHA-256, the only
// form in which it reaches the audit log.
func orderKey(ref string) (string, [32]byte, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > maxOrderRef {
		return "", [32]byte{}, fmt.Errorf("order reference must be 1 to %d bytes", maxOrderRef)
	}
	if strings.IndexFunc(ref, unicode.IsControl) >= 0 {
		return "", [32]byte{}, errors.New("order reference contains control characters")
	}
	return ref, sha256.Sum256([]byte(ref)), nil
}

// Hold puts the named sealed segments on legal hold under a court order:
// Purge keeps them until every order holding them is released. The order
// reference is kept in traffic.db (to show in `carrel traffic list`) and
// audited only as its SHA-256. It returns how many segments were named.
func (s *Store) Hold(ctx context.Context, orderRef string, names []string) (int, error) {
	if s.rec == nil {
		return 0, errInspectOnly
	}
	ref, sum, err := orderKey(orderRef)
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		return 0, errors.New("legal hold: no segments named")
	}
	uniq := map[string]bool{}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, name := range names {
			var state string
			err := tx.QueryRowContext(ctx, `SELECT state FROM segments WHERE name = ?`, name).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("segment %q: %w", name, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if State(state) != StateSealed {
				return fmt.Errorf("segment %s is %s: only sealed segments can be held", name, state)
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO holds (order_sha256, order_ref, segment, placed_at)
				VALUES (?, ?, ?, ?)`, fmt.Sprintf("%x", sum), ref, name, s.now().UnixNano()); err != nil {
				return err
			}
			uniq[name] = true
		}
		return s.enqueue(ctx, tx, audit.Event{Kind: audit.HoldPlaced, Once: randomOnce(audit.HoldPlaced), Fields: []audit.Field{
			audit.Hash("order_sha256", sum[:]), audit.Int("segments", int64(len(uniq))),
		}})
	})
	if err != nil {
		return 0, fmt.Errorf("placing legal hold: %w", err)
	}
	return len(uniq), s.Forward(ctx)
}

// Release lifts every hold placed under the order, or with segments given
// only its holds on those (an export that failed lifts the holds it
// placed, not those an earlier export of the same order placed), and
// returns how many segments it released. Segments whose case's retention
// has run out are deleted by the next Purge.
func (s *Store) Release(ctx context.Context, orderRef string, segments ...string) (int, error) {
	if s.rec == nil {
		return 0, errInspectOnly
	}
	_, sum, err := orderKey(orderRef)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		del := func(query string, args ...any) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			n += k
			return err
		}
		key := fmt.Sprintf("%x", sum)
		if len(segments) == 0 {
			if err := del(`DELETE FROM holds WHERE order_sha256 = ?`, key); err != nil {
				return err
			}
		}
		for _, seg := range segments {
			if err := del(`DELETE FROM holds WHERE order_sha256 = ? AND segment = ?`, key, seg); err != nil {
				return err
			}
		}
		if n == 0 {
			return ErrNoHold
		}
		return s.enqueue(ctx, tx, audit.Event{Kind: audit.HoldReleased, Once: randomOnce(audit.HoldReleased), Fields: []audit.Field{
			audit.Hash("order_sha256", sum[:]), audit.Int("segments", n),
		}})
	})
	if err != nil {
		return 0, fmt.Errorf("releasing legal hold: %w", err)
	}
	return int(n), s.Forward(ctx)
}
