package booking

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Summary is what the register holds, in counts and time ranges only. It
// carries no booking reference, no PC id of a single booking and no card
// HMAC: it is all the compliance reports (package report) may read of the
// register, and a layering test holds them to it.
type Summary struct {
	Bookings    int // stored bookings
	Open        int // of which not yet ended
	WithPatron  int // of which carry a patron card HMAC
	Patrons     int // distinct patron card HMACs: about how many people
	Interrupted int // of which were closed after an unclean stop
	// FirstStart and LastStart span the stored bookings' starts; zero when
	// there are none.
	FirstStart, LastStart time.Time
	// OldestEnd is the earliest end of a stored ended booking: what
	// retention deletes next. Zero when no stored booking has ended.
	OldestEnd time.Time
	// RetentionRuns counts the retention runs the register documents, and
	// LastRun is the newest; zero when none.
	RetentionRuns int
	LastRun       time.Time
}

// ReadSummary opens the register at path read-only, counts it and closes
// it. A missing register is ErrNotExist.
func ReadSummary(ctx context.Context, path string) (Summary, error) {
	s, err := OpenReadOnly(path)
	if err != nil {
		return Summary{}, err
	}
	defer s.Close()
	return s.summary(ctx)
}

func (s *Store) summary(ctx context.Context) (Summary, error) {
	var sum Summary
	var first, last, oldestEnd, lastRun sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT count(*),
		count(*) FILTER (WHERE end_ms IS NULL),
		count(*) FILTER (WHERE patron_hmac IS NOT NULL),
		count(DISTINCT patron_hmac),
		count(*) FILTER (WHERE ended_how = 'interrupted'),
		min(start_ms), max(start_ms), min(end_ms)
		FROM bookings`).Scan(&sum.Bookings, &sum.Open, &sum.WithPatron, &sum.Patrons, &sum.Interrupted, &first, &last, &oldestEnd)
	if err != nil {
		return Summary{}, fmt.Errorf("summarising bookings: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), max(at_ms) FROM events WHERE kind = 'retention'`).
		Scan(&sum.RetentionRuns, &lastRun); err != nil {
		return Summary{}, fmt.Errorf("summarising retention runs: %w", err)
	}
	sum.FirstStart, sum.LastStart, sum.OldestEnd = fromNullMS(first), fromNullMS(last), fromNullMS(oldestEnd)
	sum.LastRun = fromNullMS(lastRun)
	return sum, nil
}
