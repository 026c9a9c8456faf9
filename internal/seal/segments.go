package seal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// State is where a segment is in its life.
type State string

const (
	StateOpen    State = "open"    // being written (or left so by a crash until recovery)
	StateSealed  State = "sealed"  // complete, fsynced, hash recorded
	StateLost    State = "lost"    // unfinished when carrel crashed or a write failed; ciphertext removed
	StateDeleted State = "deleted" // removed by retention; the row stays as documentation (G6)
)

// Segment is one row of the index: everything known about a segment except
// its content.
type Segment struct {
	Name     string
	Seq      int64
	Case     string
	Format   Format
	State    State
	Opened   time.Time
	From, To time.Time // first and last record time; zero when unknown
	Records  int64
	Size     int64  // ciphertext bytes
	SHA256   string // lowercase hex of the ciphertext; "" unless sealed or deleted
	SealedAt time.Time
	EndedAt  time.Time // when it was found lost or deleted
	Holds    []string  // order references of legal holds on it
}

// Filter selects index rows; zero fields select everything.
type Filter struct {
	Case     string
	From, To time.Time // rows whose record time range overlaps [From, To]
	States   []State
}

const segmentCols = `name, seq, case_id, format, state, opened_at, first_ts, last_ts,
	records, size, sha256, sealed_at, ended_at`

// Segments lists the index rows matching f, oldest first, with their holds.
func (s *Store) Segments(ctx context.Context, f Filter) ([]Segment, error) {
	var where []string
	var args []any
	if f.Case != "" {
		where, args = append(where, `case_id = ?`), append(args, f.Case)
	}
	// A segment with no known record time is placed at its opening time.
	if !f.From.IsZero() {
		where, args = append(where, `COALESCE(last_ts, opened_at) >= ?`), append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		where, args = append(where, `COALESCE(first_ts, opened_at) <= ?`), append(args, f.To.UnixNano())
	}
	if len(f.States) > 0 {
		where = append(where, `state IN (?`+strings.Repeat(`, ?`, len(f.States)-1)+`)`)
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	q := `SELECT ` + segmentCols + ` FROM segments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY COALESCE(first_ts, opened_at), seq`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing traffic segments: %w", err)
	}
	defer rows.Close()
	var out []Segment
	idx := map[string]int{}
	for rows.Next() {
		seg, err := scanSegment(rows)
		if err != nil {
			return nil, err
		}
		idx[seg.Name] = len(out)
		out = append(out, seg)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing traffic segments: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	hrows, err := s.db.QueryContext(ctx, `SELECT segment, order_ref FROM holds ORDER BY placed_at, order_ref`)
	if err != nil {
		return nil, fmt.Errorf("listing legal holds: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var name, ref string
		if err := hrows.Scan(&name, &ref); err != nil {
			return nil, fmt.Errorf("listing legal holds: %w", err)
		}
		if i, ok := idx[name]; ok {
			out[i].Holds = append(out[i].Holds, ref)
		}
	}
	return out, hrows.Err()
}

// segment returns one row, or an error saying it is not in the index.
func (s *Store) segment(ctx context.Context, name string) (Segment, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+segmentCols+` FROM segments WHERE name = ?`, name)
	seg, err := scanSegment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Segment{}, fmt.Errorf("segment %q: %w", name, ErrNotFound)
	}
	return seg, err
}

func scanSegment(r interface{ Scan(...any) error }) (Segment, error) {
	var seg Segment
	var format, state string
	var opened int64
	var first, last, sealed, ended sql.NullInt64
	var sum sql.NullString
	err := r.Scan(&seg.Name, &seg.Seq, &seg.Case, &format, &state, &opened, &first, &last,
		&seg.Records, &seg.Size, &sum, &sealed, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return seg, err
	}
	if err != nil {
		return seg, fmt.Errorf("reading traffic index: %w", err)
	}
	seg.Format, seg.State, seg.SHA256 = Format(format), State(state), sum.String
	seg.Opened = time.Unix(0, opened).UTC()
	seg.From, seg.To = nullTime(first), nullTime(last)
	seg.SealedAt, seg.EndedAt = nullTime(sealed), nullTime(ended)
	return seg, nil
}

func nullTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Usage is what the store holds, for `carrel status` and the quota.
type Usage struct {
	Segments int   // sealed segments on disk
	Bytes    int64 // their ciphertext bytes
	Open     int   // segments being written
	Lost     int   // segments lost to a crash or a failed write, ever
}

// Usage counts the store's segments by state.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := s.db.QueryRowContext(ctx, `SELECT
		COUNT(*) FILTER (WHERE state = 'sealed'),
		COALESCE(SUM(size) FILTER (WHERE state = 'sealed'), 0),
		COUNT(*) FILTER (WHERE state = 'open'),
		COUNT(*) FILTER (WHERE state = 'lost')
		FROM segments`).Scan(&u.Segments, &u.Bytes, &u.Open, &u.Lost)
	if err != nil {
		return u, fmt.Errorf("reading traffic usage: %w", err)
	}
	return u, nil
}

// Sentinel errors of the store.
var (
	// ErrNotFound: the name is not in the index.
	ErrNotFound = errors.New("not in the traffic index")
	// ErrCorrupt: a sealed segment's file no longer matches the size or
	// SHA-256 recorded when it was sealed (truncated, altered or missing).
	ErrCorrupt = errors.New("segment does not match its index entry")
)

// Check verifies a sealed segment's file against the size and SHA-256
// recorded when it was sealed. It reads ciphertext only.
func (s *Store) Check(ctx context.Context, name string) error {
	seg, err := s.segment(ctx, name)
	if err != nil {
		return err
	}
	if seg.State != StateSealed {
		return fmt.Errorf("segment %s is %s, not sealed: nothing to check", name, seg.State)
	}
	got, n, err := hashFileAt(s.pathOf(name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("segment %s: file is missing: %w", name, ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("checking segment %s: %w", name, err)
	}
	if n != seg.Size {
		return fmt.Errorf("segment %s: file has %d bytes, index says %d (truncated or extended): %w", name, n, seg.Size, ErrCorrupt)
	}
	if got != seg.SHA256 {
		return fmt.Errorf("segment %s: SHA-256 %s, index says %s (altered): %w", name, got, seg.SHA256, ErrCorrupt)
	}
	return nil
}

func (s *Store) pathOf(name string) string    { return s.dir + string(os.PathSeparator) + name }
func (s *Store) partialOf(name string) string { return s.pathOf(name) + partialSuffix }

// inTx runs fn in one (immediate) transaction.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("traffic index: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("traffic index: %w", err)
	}
	return nil
}
