package export

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Audit entries go into the bundle when they concern the window or the
// cases involved:
//
//   - every entry recorded in the window, of any kind (mode switches,
//     config changes, service starts and stops, retention runs: none
//     carries personal data);
//   - for each case involved, its declaration judgements and switches
//     (case.accepted, case.rejected, capture.start/stop/error/quota),
//     whenever recorded;
//   - the segment.sealed or segment.lost entry of every segment that
//     overlaps the window, whenever recorded;
//   - the config.accepted entries of the config included in the bundle,
//     and the last one before the window (the config in force when it
//     opened);
//   - this export's own export.start and hold.placed.
//
// All of them are proved against one checkpoint signed after export.start.

var caseKinds = []audit.Kind{audit.CaseAccepted, audit.CaseRejected, audit.CaptureStart,
	audit.CaptureStop, audit.CaptureError, audit.QuotaReached}

type auditSelection struct {
	win      Window
	cases    []string
	segments map[string]bool
	config   [32]byte
	order    []byte
	startSeq int64
}

// selectEntries returns the entries to include, by sequence number.
func selectEntries(ctx context.Context, log *audit.Log, s auditSelection) ([]audit.Entry, error) {
	picked := map[int64]audit.Entry{}
	add := func(e audit.Entry) error { picked[e.Seq] = e; return nil }
	queries := []audit.Query{
		{Since: s.win.From, Until: s.win.To},
		{Kinds: []audit.Kind{audit.ConfigAccepted}, Fields: map[string]string{"sha256": hex.EncodeToString(s.config[:])}},
		{Kinds: []audit.Kind{audit.ExportStart, audit.HoldPlaced}, From: s.startSeq,
			Fields: map[string]string{"order_sha256": hex.EncodeToString(s.order)}},
	}
	for _, c := range s.cases {
		queries = append(queries, audit.Query{Kinds: caseKinds, Fields: map[string]string{"case": c}})
	}
	for _, q := range queries {
		if err := log.Each(ctx, q, add); err != nil {
			return nil, fmt.Errorf("selecting audit entries: %w", err)
		}
	}
	var before *audit.Entry
	err := log.Each(ctx, audit.Query{Kinds: []audit.Kind{audit.ConfigAccepted}, Until: s.win.From}, func(e audit.Entry) error {
		before = &e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("selecting audit entries: %w", err)
	}
	if before != nil {
		picked[before.Seq] = *before
	}
	if len(s.segments) > 0 {
		err := log.Each(ctx, audit.Query{Kinds: []audit.Kind{audit.SegmentSealed, audit.SegmentLost}}, func(e audit.Entry) error {
			if name, ok := e.Value("name"); ok && s.segments[name] {
				picked[e.Seq] = e
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("selecting audit entries: %w", err)
		}
	}
	out := make([]audit.Entry, 0, len(picked))
	for _, e := range picked {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b audit.Entry) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// Audit file names in the bundle. The entry and proof of sequence number N
// are entries/N.entry and entries/N.proof, N zero-padded to 12 digits so
// that a listing sorts in log order.
const (
	auditDir        = "data/audit"
	checkpointFile  = "data/audit/checkpoint"
	verifierKeyFile = "data/audit/verifier-key"
)

func entryPath(seq int64) string { return fmt.Sprintf("%s/entries/%012d.entry", auditDir, seq) }
func proofPath(seq int64) string { return fmt.Sprintf("%s/entries/%012d.proof", auditDir, seq) }
