package seal

import (
	"bufio"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/config"
)

// Defaults of WriterOptions.
const (
	DefaultMaxAge  = 60 * time.Second
	DefaultMaxSize = 16 << 20
	// DefaultMinFree is the free space a Writer leaves on the file system:
	// the bookings, the audit log and the OS share the disk with traffic,
	// and running them out of space would lose data that matters more.
	DefaultMinFree = 256 << 20
)

var (
	// ErrQuota: sealing more would push the store over capture.max_bytes.
	// The open segment has been sealed; the engine stops capture on it.
	ErrQuota = errors.New("traffic quota reached")
	// ErrDiskLow: the file system has less free space than the safety
	// margin. The open segment has been sealed; capture must stop.
	ErrDiskLow = errors.New("free disk space below the safety margin")
	// ErrClosed: the Writer was closed.
	ErrClosed = errors.New("traffic writer closed")
)

// WriterOptions configure one capture run's Writer.
type WriterOptions struct {
	Case       string   // the misuse case id; names the segments
	Format     Format   // JSONL or PCAPNG
	Header     []byte   // written at the start of every segment (pcapng SHB+IDB); may be nil
	Recipients []string // the head librarian's age X25519 recipients, age1…
	MaxAge     time.Duration
	MaxSize    int64 // ciphertext bytes of one segment
	MaxBytes   int64 // quota over all stored segments' ciphertext; 0 means none
	MinFree    int64 // free space to leave on the file system; 0 means DefaultMinFree, <0 none
	Now        func() time.Time
}

// Writer seals one capture run's records into segments. It implements the
// capture engine's Sink: Write, Due, Cut and Close are called from one
// goroutine; Stats may be called from any.
type Writer struct {
	s       *Store
	o       WriterOptions
	recips  []age.Recipient
	hdrLen  int64 // age header and nonce bytes for these recipients
	bufSize int   // bufio layer between age and the file; 0 for none (benchmarks)

	seg    *openSegment
	err    error // sticky ErrQuota / ErrDiskLow
	closed bool

	st struct {
		segments, lost, records, plain, sealed, fileWrites atomic.Int64
	}
}

// Stats are a Writer's running totals.
type Stats struct {
	Segments   int64 // sealed by this Writer
	Lost       int64 // lost to write errors
	Records    int64 // accepted records
	Plain      int64 // plaintext bytes including segment headers
	Sealed     int64 // ciphertext bytes of the sealed segments
	FileWrites int64 // write calls on segment files (the bufio layer batches them)
}

// Stats returns the running totals; safe to call from any goroutine.
func (w *Writer) Stats() Stats {
	return Stats{
		Segments:   w.st.segments.Load(),
		Lost:       w.st.lost.Load(),
		Records:    w.st.records.Load(),
		Plain:      w.st.plain.Load(),
		Sealed:     w.st.sealed.Load(),
		FileWrites: w.st.fileWrites.Load(),
	}
}

// defaultBufSize batches age's 64 KiB chunks into fewer, larger writes.
const defaultBufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, defaultBufSize) }}

// NewWriter starts a capture run's Writer. Only the process holding the
// store's lock may write. No file is created until the first Write: a run
// that sees no traffic leaves nothing behind.
func (s *Store) NewWriter(o WriterOptions) (*Writer, error) {
	if !s.owner {
		if s.rec == nil {
			return nil, errInspectOnly
		}
		return nil, fmt.Errorf("traffic store %q is in use by another carrel process", s.dir)
	}
	if !config.ValidCaseID(o.Case) {
		return nil, fmt.Errorf("case id %q cannot name segments: use 1 to 63 letters, digits, '.', '_' or '-'", o.Case)
	}
	if !o.Format.valid() {
		return nil, fmt.Errorf("segment format %q: want jsonl or pcapng", o.Format)
	}
	recips, err := ParseRecipients(o.Recipients)
	if err != nil {
		return nil, err
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("traffic quota %d bytes: must not be negative", o.MaxBytes)
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.Now == nil {
		o.Now = s.now
	}
	o.Header = append([]byte(nil), o.Header...)
	// The X25519 header has a fixed length: measure it once so the quota
	// can be checked before a segment is opened.
	var cw countWriter
	if _, err := age.Encrypt(&cw, recips...); err != nil {
		return nil, fmt.Errorf("encrypting to the recipients: %w", err)
	}
	s.writers.Add(1)
	return &Writer{s: s, o: o, recips: recips, hdrLen: cw.n, bufSize: defaultBufSize}, nil
}

// cipherSize is the exact size of an age file with hdr header bytes
// (including the nonce) and n plaintext bytes: STREAM adds a 16-byte tag to
// each 64 KiB chunk, and an empty file still has one (empty) chunk.
func cipherSize(hdr, n int64) int64 {
	const chunk, tag = 64 << 10, 16
	chunks := (n + chunk - 1) / chunk
	if chunks == 0 {
		chunks = 1
	}
	return hdr + n + chunks*tag
}

// Write appends one record with packet time ts. It refuses with ErrQuota
// before the record would push the store over its quota, and with
// ErrDiskLow when the file system runs short; in both cases the open segment
// is sealed first, so nothing already written is lost.
func (w *Writer) Write(rec []byte, ts time.Time) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	n := int64(len(rec))
	projected := cipherSize(w.hdrLen, int64(len(w.o.Header))+n)
	if w.seg != nil {
		projected = cipherSize(w.seg.hdrLen, w.seg.plain+n)
	}
	if w.o.MaxBytes > 0 && w.s.stored.Load()+projected > w.o.MaxBytes {
		return w.stop(w.quotaReached())
	}
	if w.seg == nil {
		if err := w.checkFree(); err != nil {
			return err
		}
		if err := w.open(); err != nil {
			return err
		}
	} else if w.seg.plain-w.seg.freeChecked >= freeCheckEvery {
		if err := w.checkFree(); err != nil {
			return err
		}
	}
	if ts.IsZero() {
		ts = w.o.Now()
	}
	if err := w.seg.write(rec, ts); err != nil {
		seg := w.seg
		w.seg = nil
		return w.lose(seg, err)
	}
	w.st.records.Add(1)
	w.st.plain.Add(n)
	return nil
}

// Due reports whether the open segment has reached MaxAge or MaxSize.
func (w *Writer) Due(now time.Time) bool {
	if w.seg == nil {
		return false
	}
	return now.Sub(w.seg.opened) >= w.o.MaxAge || cipherSize(w.seg.hdrLen, w.seg.plain) >= w.o.MaxSize
}

// Cut seals the open segment, if any; the next Write opens a new one.
func (w *Writer) Cut() error {
	if w.seg == nil {
		return nil
	}
	seg := w.seg
	w.seg = nil
	return w.seal(seg)
}

// Close seals the open segment and releases the Writer. Closing twice is
// harmless.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Cut()
	w.closed = true
	w.s.writers.Add(-1)
	return err
}

// stop seals the open segment, makes cause sticky and returns it.
func (w *Writer) stop(cause error) error {
	w.err = cause
	if err := w.Cut(); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// countWriter counts bytes and discards them.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// ensure Writer keeps the Sink's shape (checked against capture.Sink in tests).
var _ interface {
	Write([]byte, time.Time) error
	Due(time.Time) bool
	Cut() error
	Close() error
} = (*Writer)(nil)
