package seal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Dir and file names under the data folder. The traffic folder is separate
// from the bookings' (G3).
const (
	DirName   = "traffic"
	indexName = "traffic.db"
	lockName  = "traffic.lock"
)

// Options configure a Store.
type Options struct {
	// Recorder receives the store's audit entries. Without one the store is
	// opened for inspection only (Segments, Usage, Check, Path): it neither
	// recovers after a crash nor writes, holds, releases or purges.
	Recorder audit.Recorder
	// Actor is the audit actor of the entries this store records; default
	// "service".
	Actor string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Store is the traffic store of one data folder. Its methods are safe for
// concurrent use; at most one process (the one holding the folder's lock)
// writes segments and recovers after a crash.
type Store struct {
	dir   string
	db    *sql.DB
	rec   audit.Recorder
	actor string
	now   func() time.Time

	lock  *os.File // held while this Store may write segments; nil otherwise
	owner bool

	mu      sync.Mutex // serialises forwarding of the audit outbox and seq allocation
	nextSeq int64

	stored  atomic.Int64 // ciphertext bytes of sealed segments
	writers atomic.Int32 // open Writers; Close refuses while any is open
}

// Open opens (creating if needed) the traffic store under dataDir/traffic.
// With a Recorder it takes the folder's lock when no other process holds
// it; the lock holder settles what a crash left behind (see recover.go) and
// forwards audit entries that were written to the index but not yet to the
// audit log.
func Open(ctx context.Context, dataDir string, opts Options) (*Store, error) {
	dir := filepath.Join(dataDir, DirName)
	if opts.Recorder == nil {
		// Inspection creates nothing: no store means nothing was captured.
		if err := Exists(dataDir); err != nil {
			return nil, err
		}
	}
	if err := makePrivateDir(dir); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, rec: opts.Recorder, actor: opts.Actor, now: opts.Now}
	if s.actor == "" {
		s.actor = "service"
	}
	if s.now == nil {
		s.now = time.Now
	}
	db, err := openIndex(filepath.Join(dir, indexName))
	if err != nil {
		return nil, err
	}
	s.db = db
	if s.rec != nil {
		lock, err := tryLock(filepath.Join(dir, lockName))
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("locking traffic store %q: %w", dir, err)
		}
		s.lock, s.owner = lock, lock != nil
	}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) start(ctx context.Context) error {
	if s.owner {
		if err := s.recover(ctx); err != nil {
			return fmt.Errorf("recovering traffic store %q: %w", s.dir, err)
		}
	}
	var maxSeq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM segments`).Scan(&maxSeq); err != nil {
		return fmt.Errorf("reading traffic index: %w", err)
	}
	s.nextSeq = maxSeq.Int64 + 1
	if err := s.refreshStored(ctx); err != nil {
		return err
	}
	if s.rec != nil {
		return s.Forward(ctx)
	}
	return nil
}

// Dir returns the traffic folder.
func (s *Store) Dir() string { return s.dir }

// Path returns the file of a sealed segment, for the exporter to read its
// ciphertext. It refuses anything that is not a segment name.
func (s *Store) Path(name string) (string, error) {
	if _, err := ParseName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, name), nil
}

// Close releases the index and the folder's lock. Writers must be closed
// first: their open segments would otherwise be left for crash recovery.
func (s *Store) Close() error {
	if n := s.writers.Load(); n > 0 {
		return fmt.Errorf("closing traffic store: %d writer(s) still open", n)
	}
	err := s.db.Close()
	if s.lock != nil {
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		s.lock = nil
	}
	return err
}

func (s *Store) refreshStored(ctx context.Context) error {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT SUM(size) FROM segments WHERE state = 'sealed'`).Scan(&n); err != nil {
		return fmt.Errorf("reading traffic index: %w", err)
	}
	s.stored.Store(n.Int64)
	return nil
}

// ErrNoStore is returned when Open (without a Recorder) or Exists finds no
// traffic store: no traffic was ever sealed under this data folder.
var ErrNoStore = errors.New("no traffic store: nothing has been captured")

// Exists returns nil when dataDir holds a traffic store and an error
// matching ErrNoStore when it does not. It creates and opens nothing:
// callers that must not create a store check it before Open with a
// Recorder, which creates one.
func Exists(dataDir string) error {
	dir := filepath.Join(dataDir, DirName)
	if _, err := os.Stat(filepath.Join(dir, indexName)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", dir, ErrNoStore)
	}
	return nil
}

// errInspectOnly is returned by operations that need an audit Recorder.
var errInspectOnly = errors.New("traffic store opened without an audit log: inspection only")

// makePrivateDir creates dir readable by its owner only, and refuses an
// existing one that others can read or write: ciphertext is still personal
// data (guidance 7), and a folder others can write lets them swap segments.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating traffic folder: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking traffic folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("traffic folder %q is not a folder", dir)
	}
	// On Windows the folder inherits the data folder's ACL, which the
	// installer restricts; Unix mode bits say nothing there.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return &PermError{Path: dir, Mode: fi.Mode().Perm()}
	}
	return nil
}

// PermError says the traffic folder is open to other accounts.
type PermError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermError) Error() string {
	return fmt.Sprintf("traffic folder %q has mode %v: other accounts may read or change sealed traffic", e.Path, e.Mode)
}

// Hint tells the administrator how to fix it.
func (e *PermError) Hint() string { return "run: chmod 700 " + e.Path }
