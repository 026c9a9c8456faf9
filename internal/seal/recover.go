package seal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/carrel-lib/carrel/internal/audit"
)

// recover settles what a crash left in the traffic folder. Only the lock
// holder runs it, so no live Writer's file is touched. A crash can leave:
//
//   - a *.partial of a segment being written (row open, or no row if the
//     file came from elsewhere): the segment is lost. Its partial file is
//     removed, not kept: no hash was ever recorded for it, so nothing could
//     show in an evidence bundle that it is complete and unaltered, and
//     keeping unverifiable traffic serves no purpose the law allows. The
//     row (state lost, bytes that reached the disk) and the segment.lost
//     entry make the loss visible.
//   - a *.partial whose row is already sealed (crash between the index
//     commit and the rename): it is complete and fsynced; the rename is
//     finished once its size and SHA-256 match the row.
//   - a sealed file whose row says deleted (crash during a purge): removed.
//   - a row still open with no file (crash before the file was created,
//     or after a lost segment's file was removed): lost with size 0.
//
// A *.age file the index does not know is left alone.
func (s *Store) recover(ctx context.Context) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		base, partial := strings.CutSuffix(e.Name(), partialSuffix)
		n, err := ParseName(base)
		if err != nil {
			continue // not a segment: leave it alone
		}
		seg, err := s.segment(ctx, base)
		switch {
		case errors.Is(err, ErrNotFound) && partial:
			err = s.adoptLost(ctx, n)
		case errors.Is(err, ErrNotFound):
			// A sealed-looking file the index never knew (restored from a
			// backup, copied by hand): not ours to judge or delete.
			err = nil
		case err != nil:
		case partial && seg.State == StateOpen:
			var size int64
			if size, err = fileSize(s.partialOf(base)); err == nil {
				err = s.markLost(ctx, base, max(size, 0))
			}
		case partial && seg.State == StateSealed:
			err = s.finishRename(seg)
		case seg.State == StateLost || seg.State == StateDeleted:
			// A partial of a settled segment, or a purge cut short.
			path := s.pathOf(base)
			if partial {
				path = s.partialOf(base)
			}
			err = removeDurable(path)
		}
		if err != nil {
			return err
		}
	}
	// Rows still open have no file at all.
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM segments WHERE state = 'open'`)
	if err != nil {
		return err
	}
	var open []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		open = append(open, name)
	}
	rows.Close()
	for _, name := range open {
		if err := s.markLost(ctx, name, 0); err != nil {
			return err
		}
	}
	return rows.Err()
}

// adoptLost indexes a partial file that has no row as a lost segment.
func (s *Store) adoptLost(ctx context.Context, n Name) error {
	name := n.String()
	size, err := fileSize(s.partialOf(name))
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO segments (name, seq, case_id, format, state, opened_at, size, ended_at)
			VALUES (?, ?, ?, ?, 'lost', ?, ?, ?)`,
			name, n.Seq, n.Case, string(n.Format), n.Opened.UnixNano(), max(size, 0), s.now().UnixNano())
		if err != nil {
			return fmt.Errorf("indexing lost segment %s: %w", name, err)
		}
		return s.enqueue(ctx, tx, audit.Event{Kind: audit.SegmentLost, Once: "segment:" + name, Fields: []audit.Field{
			audit.Token("name", name), audit.Int("size", max(size, 0)),
		}})
	})
	if err != nil {
		return err
	}
	return removeDurable(s.partialOf(name))
}

// finishRename completes a seal cut short between the index commit and the
// rename. A partial that does not match its row is left for Check to report.
func (s *Store) finishRename(seg Segment) error {
	if size, err := fileSize(s.pathOf(seg.Name)); err != nil || size >= 0 {
		return err // already renamed; a stray copy stays for inspection
	}
	sum, size, err := hashFileAt(s.partialOf(seg.Name))
	if err != nil {
		return err
	}
	if size != seg.Size || sum != seg.SHA256 {
		return nil
	}
	return renameDurable(s.partialOf(seg.Name), s.pathOf(seg.Name))
}

func hashFileAt(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
