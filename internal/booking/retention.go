package booking

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PurgeReport says what a retention run deleted. From and To span the
// deleted bookings (earliest start, latest end); they are zero when nothing
// was deleted.
type PurgeReport struct {
	Cutoff   time.Time
	Deleted  int
	From, To time.Time
}

// Purge deletes every booking that ended (or, if still open, started)
// before cutoff, and documents the run in the same transaction: the run is
// recorded even when it deleted nothing, because the library must be able
// to show that retention was applied (G6).
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (PurgeReport, error) {
	rep := PurgeReport{Cutoff: cutoff.UTC()}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("purging bookings: %w", err)
	}
	defer tx.Rollback()
	const expired = `coalesce(end_ms, start_ms) < ?`
	var from, to sql.NullInt64
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*), min(start_ms), max(coalesce(end_ms, start_ms)) FROM bookings WHERE `+expired, ms(cutoff)).
		Scan(&rep.Deleted, &from, &to); err != nil {
		return rep, fmt.Errorf("purging bookings: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bookings WHERE `+expired, ms(cutoff)); err != nil {
		return rep, fmt.Errorf("purging bookings: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO events (kind, at_ms, count, cutoff_ms, from_ms, to_ms) VALUES ('retention', ?, ?, ?, ?, ?)`,
		ms(s.now()), rep.Deleted, ms(cutoff), from, to); err != nil {
		return rep, fmt.Errorf("purging bookings: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return rep, fmt.Errorf("purging bookings: %w", err)
	}
	rep.From, rep.To = fromNullMS(from), fromNullMS(to)
	return rep, nil
}

// Event is a change of the register that the audit log has not yet been
// told about (the outbox). ID is stable, so forwarding it twice can be made
// idempotent.
type Event struct {
	ID       int64
	Kind     string // "retention" or "interrupted"
	At       time.Time
	Count    int
	Cutoff   time.Time // retention only
	From, To time.Time // retention only; zero when nothing was deleted
	Reason   string    // interrupted only: one of the Interrupted constants; "" in events of older carrels
}

// PendingEvents returns the events not yet marked as audited, oldest first.
func (s *Store) PendingEvents(ctx context.Context) ([]Event, error) {
	return s.events(ctx, `audited = 0 ORDER BY id`)
}

// MarkAudited records that the audit log holds event id.
func (s *Store) MarkAudited(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE events SET audited = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("marking event %d audited: %w", id, err)
	}
	return nil
}

// RetentionRuns returns the documented retention runs since since, newest
// first, for the yearly review.
func (s *Store) RetentionRuns(ctx context.Context, since time.Time) ([]Event, error) {
	return s.events(ctx, `kind = 'retention' AND at_ms >= ? ORDER BY id DESC`, ms(since))
}

func (s *Store) events(ctx context.Context, where string, args ...any) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, kind, at_ms, count, cutoff_ms, from_ms, to_ms, reason FROM events WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading register events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var cutoff, from, to sql.NullInt64
		var reason sql.NullString
		if err := rows.Scan(&e.ID, &e.Kind, &at, &e.Count, &cutoff, &from, &to, &reason); err != nil {
			return nil, fmt.Errorf("reading register events: %w", err)
		}
		e.At, e.Cutoff, e.From, e.To = fromMS(at), fromNullMS(cutoff), fromNullMS(from), fromNullMS(to)
		e.Reason = reason.String
		out = append(out, e)
	}
	return out, rows.Err()
}
