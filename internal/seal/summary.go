package seal

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
)

// Summary is what the traffic store holds, in counts, sizes and time
// ranges only: no segment name, no record, nothing decrypted. It is all the
// compliance reports (package report) may read of the store, and a
// layering test holds them to it.
type Summary struct {
	Cases []CaseSummary // per case id, in id order
	Holds []HoldSummary // open legal holds, oldest first
	Lost  int           // segments lost to a crash or a failed write, ever
	Open  int           // segments being written (or left open by a crash)
}

// CaseSummary counts one case's segments by state.
type CaseSummary struct {
	Case           string
	Format         Format // of its newest segment
	Sealed         int    // sealed segments on disk
	SealedBytes    int64  // their ciphertext bytes
	SealedRecords  int64
	From, To       time.Time // record time range of the sealed segments; zero when unknown
	Deleted        int       // segments deleted by retention; their rows remain as documentation
	DeletedBytes   int64
	LastDeletedAt  time.Time // when retention last deleted one of its segments
	FirstOpened    time.Time // when its first segment was opened
	HeldSegments   int       // sealed segments under at least one legal hold
	LostOrUnsealed int       // lost or open segments
}

// HoldSummary is one court order's legal hold.
type HoldSummary struct {
	OrderRef    string // the order's reference as the exporter typed it
	OrderSHA256 string // its digest, the form the audit log holds
	Segments    int
	Bytes       int64
	PlacedAt    time.Time // the earliest placement under this order
}

// ReadSummary opens the store's index under dataDir read-only, counts it
// and closes it. Without a store it returns an error matching ErrNoStore.
func ReadSummary(ctx context.Context, dataDir string) (Summary, error) {
	if err := Exists(dataDir); err != nil {
		return Summary{}, err
	}
	path := filepath.Join(dataDir, DirName, indexName)
	db, v, err := sqlitedb.OpenReadOnly(ctx, path)
	if err != nil {
		return Summary{}, fmt.Errorf("opening traffic index %q: %w", path, err)
	}
	defer db.Close()
	if v != len(migrations) {
		return Summary{}, fmt.Errorf("traffic index %q has schema version %d, this carrel reads %d", path, v, len(migrations))
	}
	return summarise(ctx, db)
}

func summarise(ctx context.Context, db *sql.DB) (Summary, error) {
	var sum Summary
	rows, err := db.QueryContext(ctx, `SELECT case_id,
		(SELECT format FROM segments n WHERE n.case_id = s.case_id ORDER BY seq DESC LIMIT 1),
		count(*) FILTER (WHERE state = 'sealed'),
		coalesce(sum(size) FILTER (WHERE state = 'sealed'), 0),
		coalesce(sum(records) FILTER (WHERE state = 'sealed'), 0),
		min(first_ts) FILTER (WHERE state = 'sealed'),
		max(last_ts) FILTER (WHERE state = 'sealed'),
		count(*) FILTER (WHERE state = 'deleted'),
		coalesce(sum(size) FILTER (WHERE state = 'deleted'), 0),
		max(ended_at) FILTER (WHERE state = 'deleted'),
		min(opened_at),
		count(*) FILTER (WHERE state = 'sealed' AND EXISTS (SELECT 1 FROM holds h WHERE h.segment = s.name)),
		count(*) FILTER (WHERE state IN ('lost', 'open'))
		FROM segments s GROUP BY case_id ORDER BY case_id`)
	if err != nil {
		return Summary{}, fmt.Errorf("summarising traffic: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c CaseSummary
		var format string
		var from, to, lastDel, opened sql.NullInt64
		if err := rows.Scan(&c.Case, &format, &c.Sealed, &c.SealedBytes, &c.SealedRecords, &from, &to,
			&c.Deleted, &c.DeletedBytes, &lastDel, &opened, &c.HeldSegments, &c.LostOrUnsealed); err != nil {
			return Summary{}, fmt.Errorf("summarising traffic: %w", err)
		}
		c.Format = Format(format)
		c.From, c.To, c.LastDeletedAt, c.FirstOpened = nullTime(from), nullTime(to), nullTime(lastDel), nullTime(opened)
		sum.Cases = append(sum.Cases, c)
	}
	if err := rows.Err(); err != nil {
		return Summary{}, fmt.Errorf("summarising traffic: %w", err)
	}
	rows.Close()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE state = 'lost'), count(*) FILTER (WHERE state = 'open') FROM segments`).
		Scan(&sum.Lost, &sum.Open); err != nil {
		return Summary{}, fmt.Errorf("summarising traffic: %w", err)
	}
	hrows, err := db.QueryContext(ctx, `SELECT h.order_ref, h.order_sha256, count(*), coalesce(sum(s.size), 0), min(h.placed_at)
		FROM holds h JOIN segments s ON s.name = h.segment
		GROUP BY h.order_sha256, h.order_ref ORDER BY min(h.placed_at), h.order_sha256`)
	if err != nil {
		return Summary{}, fmt.Errorf("summarising legal holds: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var h HoldSummary
		var placed int64
		if err := hrows.Scan(&h.OrderRef, &h.OrderSHA256, &h.Segments, &h.Bytes, &placed); err != nil {
			return Summary{}, fmt.Errorf("summarising legal holds: %w", err)
		}
		h.PlacedAt = time.Unix(0, placed).UTC()
		sum.Holds = append(sum.Holds, h)
	}
	return sum, hrows.Err()
}
