package booking

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Why open bookings were closed as interrupted. A clean stop and start of
// the service on the same boot of the PC closes nothing: the booking client
// ends those bookings itself afterwards.
const (
	// InterruptedUncleanStop: the service stopped without a clean stop
	// (killed, crashed) while the PC kept running.
	InterruptedUncleanStop = "unclean-stop"
	// InterruptedReboot: the service stopped cleanly, then the PC
	// restarted, ending every session on it.
	InterruptedReboot = "reboot"
	// InterruptedUncleanReboot: the service did not stop cleanly and the PC
	// restarted (power loss, a crash or reset of the PC).
	InterruptedUncleanReboot = "unclean-reboot"
)

// Alive is the register's record of the service's last run.
type Alive struct {
	// At is the last moment the service was known alive (its last
	// heartbeat, or its clean stop); zero if it never ran.
	At time.Time
	// Boot identifies the boot of the PC that run was in; "" if unknown
	// (the register was written by an older carrel, or the boot could not
	// be read).
	Boot string
}

// Heartbeat records that the service is alive now. The daemon calls it every
// few seconds and at a clean stop; open bookings closed as interrupted end at
// the last heartbeat, so a booking's recorded end is never later than the
// truth by more than one interval.
func (s *Store) Heartbeat(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO alive (id, at_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms`,
		ms(s.now()))
	if isDiskFull(err) {
		return fmt.Errorf("recording heartbeat: %w (%v)", ErrDiskFull, err)
	}
	if err != nil {
		return fmt.Errorf("recording heartbeat: %w", err)
	}
	return nil
}

// MarkBoot records the boot of the PC this run of the service is in, and a
// heartbeat. It is called at start, after CloseInterrupted, so that a crash
// between the two leaves the previous boot in place.
func (s *Store) MarkBoot(ctx context.Context, boot string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO alive (id, at_ms, boot_id) VALUES (1, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms, boot_id = excluded.boot_id`,
		ms(s.now()), sql.NullString{String: boot, Valid: boot != ""})
	if err != nil {
		return fmt.Errorf("recording the PC's boot: %w", err)
	}
	return nil
}

// LastAlive returns the record of the last run; zero if there was none.
func (s *Store) LastAlive(ctx context.Context) (Alive, error) {
	var at sql.NullInt64
	var boot sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT at_ms, boot_id FROM alive WHERE id = 1`).Scan(&at, &boot)
	if err != nil && err != sql.ErrNoRows {
		return Alive{}, fmt.Errorf("reading heartbeat: %w", err)
	}
	return Alive{At: fromNullMS(at), Boot: boot.String}, nil
}

// CloseInterrupted closes every open booking as interrupted, at the last
// heartbeat (or at its own start if it began after that), and records an
// event with reason (one of the Interrupted constants) for the audit log in
// the same transaction. The daemon calls it at start, before the API accepts
// requests, only when the previous run stopped uncleanly or the PC
// restarted. It returns how many it closed and when they ended.
func (s *Store) CloseInterrupted(ctx context.Context, reason string) (int, time.Time, error) {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (kind, at_ms, count, reason) VALUES ('interrupted', ?, ?, ?)`,
			at, n, reason); err != nil {
			return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, time.Time{}, fmt.Errorf("closing interrupted bookings: %w", err)
	}
	return int(n), fromMS(at), nil
}
