package booking

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Heartbeat records that the service is alive now. The daemon calls it every
// few seconds; after an unclean stop, open bookings are closed at the last
// heartbeat, so a booking's recorded end is never later than the truth by
// more than one interval.
func (s *Store) Heartbeat(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO alive (id, at_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms`,
		ms(s.now()))
	if err != nil {
		return fmt.Errorf("recording heartbeat: %w", err)
	}
	return nil
}

// LastAlive returns the last heartbeat, or zero if there was none.
func (s *Store) LastAlive(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT at_ms FROM alive WHERE id = 1`).Scan(&at)
	if err != nil && err != sql.ErrNoRows {
		return time.Time{}, fmt.Errorf("reading heartbeat: %w", err)
	}
	return fromNullMS(at), nil
}

// CloseInterrupted closes every open booking as interrupted, at the last
// heartbeat (or at its own start if it began after that). It is called once
// at service start, before the API accepts requests, and records an event
// for the audit log in the same transaction. It returns how many it closed.
func (s *Store) CloseInterrupted(ctx context.Context) (int, time.Time, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
	}
	defer tx.Rollback()
	var alive sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT at_ms FROM alive WHERE id = 1`).Scan(&alive); err != nil && err != sql.ErrNoRows {
		return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
	}
	at := alive.Int64
	if !alive.Valid {
		// No heartbeat was ever written; the best known moment is now.
		at = ms(s.now())
	}
	res, err := tx.ExecContext(ctx,
		`UPDATE bookings SET end_ms = max(start_ms, ?), ended_how = 'interrupted' WHERE end_ms IS NULL`, at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (kind, at_ms, count) VALUES ('interrupted', ?, ?)`, at, n); err != nil {
			return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
	}
	return int(n), fromMS(at), nil
}
