package booking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
)

// Ended says how a booking ended.
type Ended string

const (
	// EndedNormally: the booking client ended it.
	EndedNormally Ended = "ended"
	// EndedInterrupted: it was still open when the service stopped
	// uncleanly or the PC restarted; its end is the last moment the service
	// was known alive.
	EndedInterrupted Ended = "interrupted"
)

// Booking is one row of the register.
type Booking struct {
	PC         string
	Ref        string
	Start      time.Time
	PlannedEnd time.Time // zero when not given
	End        time.Time // zero while open
	Ended      Ended     // "" while open
	HasPatron  bool      // a patron card HMAC is stored (the HMAC itself never leaves the store)
}

// Open reports whether the booking has not ended.
func (b Booking) Open() bool { return b.End.IsZero() }

// Sentinel errors. The API maps them to HTTP statuses.
var (
	// ErrAlreadyOpen: a booking with this reference is already open.
	ErrAlreadyOpen = errors.New("a booking with this reference is already open")
	// ErrNoOpenBooking: no open booking has this reference.
	ErrNoOpenBooking = errors.New("no open booking with this reference")
	// ErrInvalid: the request breaks a rule (see the wrapped message).
	ErrInvalid = errors.New("invalid booking")
	// ErrDiskFull: the change could not be stored because the file system
	// of the register is full. Nothing was changed; the same request
	// succeeds once there is space again.
	ErrDiskFull = errors.New("disk full: the data folder has no space left")
)

// Store is the booking register. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	secret []byte // patron HMAC key
	now    func() time.Time

	mu       sync.Mutex
	fullAt   time.Time // first booking change refused for want of space since the last one stored
	fullRefs int       // how many were refused since
}

// Options configure Open.
type Options struct {
	// Secret keys the patron card HMAC (see LoadOrCreateSecret).
	Secret []byte
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Open opens (creating if needed) the register at path and brings its schema
// up to date.
func Open(path string, opts Options) (*Store, error) {
	if len(opts.Secret) < 32 {
		return nil, fmt.Errorf("opening booking register %q: patron secret must be at least 32 bytes", path)
	}
	db, err := sqlitedb.Open(context.Background(), path, migrations)
	if err != nil {
		return nil, fmt.Errorf("opening booking register %q: %w", path, err)
	}
	s := &Store{db: db, secret: opts.Secret, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// StartRequest is what a booking client sends to start a booking.
type StartRequest struct {
	PC         string
	Ref        string
	Patron     string    // card number; stored only as an HMAC; may be empty
	PlannedEnd time.Time // may be zero
}

// Start records a new open booking starting now. It returns only after the
// row is durably committed.
func (s *Store) Start(ctx context.Context, r StartRequest) (Booking, error) {
	now := s.now()
	if err := r.Validate(now); err != nil {
		return Booking{}, err
	}
	var patron []byte
	if r.Patron != "" {
		patron = s.patronHMAC(r.Patron)
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO bookings (pc_id, ref, patron_hmac, start_ms, planned_end_ms) VALUES (?, ?, ?, ?, ?)`,
		r.PC, r.Ref, patron, ms(now), nullMS(r.PlannedEnd))
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
		return Booking{}, fmt.Errorf("starting booking %q: %w", r.Ref, ErrAlreadyOpen)
	}
	if err := s.written(err); err != nil {
		return Booking{}, fmt.Errorf("starting booking: %w", err)
	}
	return Booking{PC: r.PC, Ref: r.Ref, Start: fromMS(ms(now)), PlannedEnd: fromNullMS(nullMS(r.PlannedEnd)), HasPatron: patron != nil}, nil
}

// End closes the open booking with this reference, now.
func (s *Store) End(ctx context.Context, ref string) (Booking, error) {
	if err := ValidateRef(ref); err != nil {
		return Booking{}, err
	}
	b, err := s.end(ctx, ref)
	if errors.Is(err, ErrNoOpenBooking) {
		return Booking{}, err
	}
	if err := s.written(err); err != nil {
		return Booking{}, fmt.Errorf("ending booking: %w", err)
	}
	return b, nil
}

func (s *Store) end(ctx context.Context, ref string) (Booking, error) {
	now := ms(s.now())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Booking{}, err
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `SELECT `+columns+` FROM bookings WHERE ref = ? AND end_ms IS NULL`, ref)
	b, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Booking{}, fmt.Errorf("ending booking %q: %w", ref, ErrNoOpenBooking)
	}
	if err != nil {
		return Booking{}, err
	}
	// A clock that stepped back must not make a booking end before it began.
	end := max(now, ms(b.Start))
	if _, err := tx.ExecContext(ctx, `UPDATE bookings SET end_ms = ?, ended_how = ? WHERE ref = ? AND end_ms IS NULL`,
		end, EndedNormally, ref); err != nil {
		return Booking{}, err
	}
	if err := tx.Commit(); err != nil {
		return Booking{}, err
	}
	b.End, b.Ended = fromMS(end), EndedNormally
	return b, nil
}

// written notes the outcome of a booking change for DiskFull: a change
// refused for want of space is counted, one stored clears the count. It
// returns err, marked with ErrDiskFull when that was the cause.
func (s *Store) written(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.fullAt, s.fullRefs = time.Time{}, 0
		return nil
	}
	if !isDiskFull(err) {
		return err
	}
	if s.fullRefs == 0 {
		s.fullAt = s.now()
	}
	s.fullRefs++
	return fmt.Errorf("%w (%v)", ErrDiskFull, err)
}

// DiskFull reports since when booking changes have been refused for want
// of space, and how many; zero when the last change was stored.
func (s *Store) DiskFull() (since time.Time, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fullAt, s.fullRefs
}

// isDiskFull: SQLite reports a full file system as SQLITE_FULL (on Linux
// from ENOSPC, on Windows from ERROR_DISK_FULL); a write that fails with
// ENOSPC outside SQLite's own mapping is the same.
func isDiskFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC) {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}

// List returns the bookings that overlap [from, to), oldest first. A zero
// from or to leaves that side open.
func (s *Store) List(ctx context.Context, from, to time.Time) ([]Booking, error) {
	q := `SELECT ` + columns + ` FROM bookings WHERE 1=1`
	var args []any
	if !from.IsZero() {
		q += ` AND (end_ms IS NULL OR end_ms > ?)`
		args = append(args, ms(from))
	}
	if !to.IsZero() {
		q += ` AND start_ms < ?`
		args = append(args, ms(to))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY start_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing bookings: %w", err)
	}
	defer rows.Close()
	var out []Booking
	for rows.Next() {
		b, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("listing bookings: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing bookings: %w", err)
	}
	return out, nil
}

// Stats summarises the register for `carrel status`.
type Stats struct {
	Count  int
	Open   int
	Oldest time.Time // start of the oldest stored booking; zero when none
}

// Stats counts the stored bookings.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*), count(*) FILTER (WHERE end_ms IS NULL), min(start_ms) FROM bookings`).
		Scan(&st.Count, &st.Open, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("counting bookings: %w", err)
	}
	st.Oldest = fromNullMS(oldest)
	return st, nil
}

const columns = `pc_id, ref, patron_hmac IS NOT NULL, start_ms, planned_end_ms, end_ms, ended_how`

type scanner interface{ Scan(...any) error }

func scan(r scanner) (Booking, error) {
	var b Booking
	var start int64
	var planned, end sql.NullInt64
	var how sql.NullString
	if err := r.Scan(&b.PC, &b.Ref, &b.HasPatron, &start, &planned, &end, &how); err != nil {
		return Booking{}, err
	}
	b.Start, b.PlannedEnd, b.End = fromMS(start), fromNullMS(planned), fromNullMS(end)
	b.Ended = Ended(how.String)
	return b, nil
}

// Times are stored as Unix milliseconds: exact, sortable, and readable with
// the sqlite3 CLI via datetime(x/1000, 'unixepoch').
func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
