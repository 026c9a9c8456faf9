package seal

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/audit"
)

// freeCheckEvery is how much plaintext a segment takes between checks of
// the file system's free space (a statfs call each).
const freeCheckEvery = 4 << 20

// openSegment is the segment a Writer is filling. Bytes flow
// age → sumWriter → bufio → fileWriter → *.partial file: the ciphertext is
// hashed as age hands it over, while it is still in the CPU cache.
type openSegment struct {
	name        string
	file        *os.File
	sum         *sumWriter
	out         *fileWriter
	buf         *bufio.Writer // nil when the Writer has no bufio layer
	pooled      bool
	enc         io.WriteCloser
	hdrLen      int64
	opened      time.Time
	plain       int64
	records     int64
	first, last time.Time
	freeChecked int64
}

// sumWriter hashes and counts the ciphertext.
type sumWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (s *sumWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	return n, err
}

// fileWriter counts what reaches the file and in how many calls.
type fileWriter struct {
	f         *os.File
	n, writes int64
}

func (f *fileWriter) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	f.n += int64(n)
	f.writes++
	return n, err
}

func (seg *openSegment) write(rec []byte, ts time.Time) error {
	if _, err := seg.enc.Write(rec); err != nil {
		return err
	}
	seg.plain += int64(len(rec))
	seg.records++
	if seg.first.IsZero() || ts.Before(seg.first) {
		seg.first = ts
	}
	if ts.After(seg.last) {
		seg.last = ts
	}
	return nil
}

// open starts a segment: the index row first (state open), so that a crash
// at any later point leaves a row that recovery can mark lost.
func (w *Writer) open() error {
	ctx := context.Background()
	opened := w.o.Now().UTC().Truncate(time.Millisecond)
	name := w.s.allocName(w.o.Case, w.o.Format, opened)
	if err := w.s.refreshStored(ctx); err != nil {
		return err
	}
	_, err := w.s.db.ExecContext(ctx, `INSERT INTO segments (name, seq, case_id, format, state, opened_at)
		VALUES (?, ?, ?, ?, 'open', ?)`, name.String(), name.Seq, name.Case, string(name.Format), opened.UnixNano())
	if err != nil {
		return fmt.Errorf("indexing new segment %s: %w", name, err)
	}
	seg := &openSegment{name: name.String(), opened: opened}
	seg.file, err = os.OpenFile(w.s.partialOf(seg.name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return w.lose(seg, fmt.Errorf("creating segment file: %w", err))
	}
	seg.out = &fileWriter{f: seg.file}
	var dst io.Writer = seg.out
	if w.bufSize > 0 {
		if w.bufSize == defaultBufSize {
			seg.buf, seg.pooled = bufPool.Get().(*bufio.Writer), true
			seg.buf.Reset(seg.out)
		} else {
			seg.buf = bufio.NewWriterSize(seg.out, w.bufSize)
		}
		dst = seg.buf
	}
	seg.sum = &sumWriter{w: dst, h: sha256.New()}
	if seg.enc, err = age.Encrypt(seg.sum, w.recips...); err != nil {
		return w.lose(seg, fmt.Errorf("encrypting segment: %w", err))
	}
	seg.hdrLen = seg.sum.n
	if len(w.o.Header) > 0 {
		if _, err := seg.enc.Write(w.o.Header); err != nil {
			return w.lose(seg, fmt.Errorf("writing segment header: %w", err))
		}
		seg.plain = int64(len(w.o.Header))
		w.st.plain.Add(seg.plain)
	}
	w.seg = seg
	return nil
}

// allocName returns the next unused segment name.
func (s *Store) allocName(caseID string, f Format, opened time.Time) Name {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := Name{Case: caseID, Opened: opened, Seq: s.nextSeq, Format: f}
	s.nextSeq++
	return n
}

// flush finishes the age stream and makes the file durable.
func (seg *openSegment) flush() error {
	if err := seg.enc.Close(); err != nil {
		return fmt.Errorf("finishing encryption: %w", err)
	}
	if seg.buf != nil {
		if err := seg.buf.Flush(); err != nil {
			return fmt.Errorf("writing segment file: %w", err)
		}
	}
	if err := seg.file.Sync(); err != nil {
		return fmt.Errorf("syncing segment file: %w", err)
	}
	return nil
}

// release returns pooled memory and closes the file.
func (seg *openSegment) release() error {
	if seg.pooled {
		seg.buf.Reset(nil)
		bufPool.Put(seg.buf)
		seg.buf, seg.pooled = nil, false
	}
	if seg.file == nil {
		return nil
	}
	err := seg.file.Close()
	seg.file = nil
	return err
}

// seal makes seg durable, indexes it with its audit entry in one
// transaction, renames it into place and forwards the entry. Once the
// transaction commits the segment is sealed even if the rename is cut short
// by a crash: recovery completes it.
func (w *Writer) seal(seg *openSegment) error {
	ctx := context.Background()
	err := seg.flush()
	if cerr := seg.release(); err == nil && cerr != nil {
		err = fmt.Errorf("closing segment file: %w", cerr)
	}
	if err != nil {
		return w.lose(seg, err)
	}
	size, sum := seg.sum.n, seg.sum.h.Sum(nil)
	if seg.out.n != size {
		return w.lose(seg, fmt.Errorf("segment file has %d bytes, %d were written", seg.out.n, size))
	}
	err = w.s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'sealed', first_ts = ?, last_ts = ?,
			records = ?, size = ?, sha256 = ?, sealed_at = ? WHERE name = ? AND state = 'open'`,
			seg.first.UnixNano(), seg.last.UnixNano(), seg.records, size, hex.EncodeToString(sum),
			w.s.now().UnixNano(), seg.name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("segment %s is no longer open in the index", seg.name)
		}
		return w.s.enqueue(ctx, tx, audit.Event{Kind: audit.SegmentSealed, Once: "segment:" + seg.name, Fields: []audit.Field{
			audit.Token("case", w.o.Case), audit.Token("name", seg.name), audit.Hash("sha256", sum),
			audit.Int("size", size), audit.Int("records", seg.records),
			audit.Time("from", seg.first), audit.Time("to", seg.last),
		}})
	})
	if err != nil {
		return w.lose(seg, fmt.Errorf("indexing segment: %w", err))
	}
	w.s.stored.Add(size)
	w.st.segments.Add(1)
	w.st.sealed.Add(size)
	w.st.fileWrites.Add(seg.out.writes)
	if err := renameDurable(w.s.partialOf(seg.name), w.s.pathOf(seg.name)); err != nil {
		return fmt.Errorf("segment %s is sealed and indexed but still named .partial (the next start completes it): %w", seg.name, err)
	}
	if err := w.s.Forward(ctx); err != nil {
		return fmt.Errorf("segment %s is sealed; its audit entry waits in the outbox: %w", seg.name, err)
	}
	return nil
}

// lose gives up on seg after cause: its partial file is removed (no hash was
// ever recorded for it, so nothing could show it is complete and unaltered),
// its row says lost with the bytes that had reached the disk, and the loss
// is audited. The Writer stays usable: the next Write opens a new segment.
func (w *Writer) lose(seg *openSegment, cause error) error {
	ctx := context.Background()
	seg.release()
	var size int64
	if seg.out != nil {
		size = seg.out.n
		w.st.fileWrites.Add(seg.out.writes)
	}
	w.st.lost.Add(1)
	err := w.s.markLost(ctx, seg.name, size)
	if err == nil {
		err = w.s.Forward(ctx)
	}
	return errors.Join(fmt.Errorf("segment %s lost: %w", seg.name, cause), err)
}

// markLost removes an open segment's partial file, then records in one
// transaction that it was lost, with its audit entry. The file goes first:
// on a full disk that frees the space the index needs; a crash in between
// leaves an open row without a file, which recovery marks lost too (with
// size 0).
func (s *Store) markLost(ctx context.Context, name string, size int64) error {
	if err := removeDurable(s.partialOf(name)); err != nil {
		return fmt.Errorf("removing lost segment %s: %w", name, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'lost', size = ?, ended_at = ?
			WHERE name = ? AND state = 'open'`, size, s.now().UnixNano(), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil // never indexed as open, or already settled
		}
		return s.enqueue(ctx, tx, audit.Event{Kind: audit.SegmentLost, Once: "segment:" + name, Fields: []audit.Field{
			audit.Token("name", name), audit.Int("size", size),
		}})
	})
	if err != nil {
		return fmt.Errorf("recording lost segment %s: %w", name, err)
	}
	return nil
}

// quotaReached records capture.quota and returns the sticky error.
func (w *Writer) quotaReached() error {
	used := w.s.stored.Load()
	if w.seg != nil {
		used += cipherSize(w.seg.hdrLen, w.seg.plain)
	}
	err := fmt.Errorf("case %s: %d of %d bytes used: %w", w.o.Case, used, w.o.MaxBytes, ErrQuota)
	aerr := w.s.record(context.Background(), audit.Event{Kind: audit.QuotaReached, Fields: []audit.Field{
		audit.Token("case", w.o.Case), audit.Int("max_bytes", w.o.MaxBytes), audit.Int("used_bytes", used),
	}})
	return errors.Join(err, aerr)
}

// checkFree refuses to go on when the file system is short of MinFree.
func (w *Writer) checkFree() error {
	if w.seg != nil {
		w.seg.freeChecked = w.seg.plain
	}
	if w.o.MinFree < 0 {
		return nil
	}
	free, err := freeBytes(w.s.dir)
	if err != nil {
		return fmt.Errorf("checking free disk space: %w", err)
	}
	if free >= uint64(w.o.MinFree) {
		return nil
	}
	cause := fmt.Errorf("%d bytes free under %s, margin %d: %w", free, w.s.dir, w.o.MinFree, ErrDiskLow)
	// capture.error is the closest declared kind: the run stops here.
	aerr := w.s.record(context.Background(), audit.Event{Kind: audit.CaptureError, Fields: []audit.Field{
		audit.Token("case", w.o.Case), audit.Text("why", "free disk space below the safety margin"),
	}})
	return w.stop(errors.Join(cause, aerr))
}

// record queues e with a fresh Once key and forwards it.
func (s *Store) record(ctx context.Context, e audit.Event) error {
	if e.Once == "" {
		e.Once = randomOnce(e.Kind)
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.enqueue(ctx, tx, e) }); err != nil {
		return err
	}
	return s.Forward(ctx)
}
