package report

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// clean is a review that no rule objects to.
func clean() *Review {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	return &Review{
		Meta: Meta{Made: to.Add(24 * time.Hour), Period: &Period{From: from, To: to},
			Library: Library{Name: "Bibliotek", Responsible: "Ida", Contact: "bib@example"}},
		Retention: RetentionReview{BookingRetentionSeconds: int64(28 * 24 * time.Hour / time.Second)},
		Audit: AuditReview{Verification: Verification{OK: true,
			Trusted: &TrustedCheckpoint{Size: 10, Covers: to.Add(-time.Hour)}}},
	}
}

// TestFindingRules: each rule fires on the one fact it is about, and on
// nothing in a clean review. Removing a rule from rules fails its case.
func TestFindingRules(t *testing.T) {
	hold := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		rule   string
		change func(r *Review)
		want   string // in the message
	}{
		{"audit-log-fails-verify", func(r *Review) { r.Audit.OK, r.Audit.Problem = false, "entry 7: leaf hash differs" }, "entry 7"},
		{"booking-retention-above-28-days", func(r *Review) { r.Retention.BookingRetentionSeconds = 29 * 24 * 3600 }, "29 days"},
		{"retention-runs-missing", func(r *Review) {
			r.Retention.Gaps = []Gap{{From: hold, To: hold.Add(3 * time.Hour), Seconds: 3 * 3600, Cause: "no-run"}}
		}, "3 hours"},
		{"bookings-kept-past-retention", func(r *Review) { r.Retention.OverdueSeconds = 2 * 24 * 3600 }, "2 days"},
		{"traffic-kept-past-retention", func(r *Review) {
			r.Traffic.Stored = []StoredCase{{Case: "c-1", Segments: 3, Held: 1, DeleteAfter: ptr(hold)}}
		}, "c-1: 2 sealed"},
		{"legal-hold-older-than-180-days", func(r *Review) {
			r.Traffic.Holds = []OpenHold{{OrderRef: "BS-9/2025", Placed: hold, AgeSeconds: 181 * 24 * 3600, Segments: 2}}
		}, "BS-9/2025"},
		{"packets-case", func(r *Review) { r.Cases = []CaseReview{{ID: "k-1", Mode: "packets", Verdict: "accepted"}} }, "k-1"},
		{"case-refused", func(r *Review) { r.Cases = []CaseReview{{ID: "k-2", Mode: "metadata", Verdict: "refused"}} }, "k-2"},
		{"no-verified-off-pc-checkpoint", func(r *Review) { r.Audit.Trusted = nil }, "No checkpoint"},
		{"witness-refused", func(r *Review) { r.Audit.WitnessRefusals = []Count{{What: "w1: not-extension", Count: 2}} }, "w1: not-extension"},
		{"witness-refusal-unacknowledged", func(r *Review) {
			r.Audit.PendingRefusals = []PendingRefusal{{Witness: "w2", Why: "rolled-back", Since: hold, LogSize: 40, WitnessSize: 55}}
		}, "Witness w2 has refused to cosign (rolled back) since 2025-01-02"},
		{"witness-behind", func(r *Review) {
			r.Audit.Witnesses = []WitnessReview{{Name: "w1", Behind: &WitnessBehind{Due: hold, Entries: 120, Covered: 80}}}
		}, "w1 has not cosigned the 120 entries"},
		{"witness-cosignature-rejected", func(r *Review) {
			// Two rows for the same witness and reason make one finding.
			r.Audit.CosignaturesRejected = []RejectedCosignature{{Witness: "w1", Size: 7, Why: "bad-signature"}, {Witness: "w1", Size: 9, Why: "bad-signature"}}
		}, "2 stored cosignatures in the name of witness w1 were not counted: does not verify"},
		{"refused-configs", func(r *Review) { r.Config.Rejected = []RejectedConfig{{At: hold, Problems: "(file)", Count: 1}} }, ": 1."},
		{"unclean-stops", func(r *Review) { r.Service.Unclean = []UncleanStop{{Noticed: hold}}; r.Service.Interrupted = 4 }, "4 open"},
		{"capture-incomplete", func(r *Review) { r.Capture.Errors = 2 }, "2 errors"},
		{"export-not-finished", func(r *Review) { r.Exports = []ExportReview{{At: hold, Result: "failed"}} }, "failed"},
		{"api-refusals", func(r *Review) { r.API = []Count{{What: "not-in-group", Count: 5}} }, "5 requests"},
		{"library-details-missing", func(r *Review) { r.Meta.Library.Contact = "" }, "library.contact"},
	}
	tr := newPrinter("en", time.UTC)
	if got := Findings(clean(), tr); len(got) != 0 {
		t.Fatalf("Findings(clean review) = %+v; want none", got)
	}
	var tested []string
	for _, tt := range tests {
		tested = append(tested, tt.rule)
		t.Run(tt.rule, func(t *testing.T) {
			r := clean()
			tt.change(r)
			got := Findings(r, tr)
			if len(got) != 1 || got[0].Rule != tt.rule || !strings.Contains(got[0].Message, tt.want) {
				t.Fatalf("Findings() = %+v; want one %s finding mentioning %q", got, tt.rule, tt.want)
			}
			if !strings.Contains(got[0].Basis, "legal frame") || len(got[0].Frame) == 0 {
				t.Errorf("finding %s has basis %q, frame %v; want the rule and its frame points", tt.rule, got[0].Basis, got[0].Frame)
			}
		})
	}
	for _, ru := range rules {
		if !slices.Contains(tested, ru.id) {
			t.Errorf("rule %s has no case in TestFindingRules", ru.id)
		}
	}
}

// TestWitnessedSatisfiesOffPC: a checkpoint witnessed in the period is
// the off-PC evidence the rule asks for, without a trusted checkpoint; a
// witness that is not behind and has no pending refusal is no finding.
func TestWitnessedSatisfiesOffPC(t *testing.T) {
	tr := newPrinter("en", time.UTC)
	r := clean()
	r.Audit.Trusted = nil
	r.Audit.Witnessed = 1
	r.Audit.Witnesses = []WitnessReview{{Name: "w1", Cosignatures: 1}}
	if got := Findings(r, tr); len(got) != 0 {
		t.Errorf("Findings(witnessed, no trusted checkpoint) = %+v; want none", got)
	}
	r.Audit.Witnessed = 0
	if got := Findings(r, tr); len(got) != 1 || got[0].Rule != "no-verified-off-pc-checkpoint" {
		t.Errorf("Findings(not witnessed, no trusted checkpoint) = %+v; want no-verified-off-pc-checkpoint", got)
	}
}

// TestGapBoundaries pins the tolerance: a run 1 h 15 min after the last is
// on time, one a minute later is a gap; a clean stop under a day is
// counted, not listed.
func TestGapBoundaries(t *testing.T) {
	t0 := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	ents := entriesAt(t0, "service.start")
	for _, tt := range []struct {
		name      string
		runs      []time.Duration
		wantGaps  int
		wantShort int
	}{
		{"on time", []time.Duration{0, time.Hour + 15*time.Minute, 2*time.Hour + 30*time.Minute}, 0, 0},
		{"a minute late", []time.Duration{0, time.Hour + 16*time.Minute, 2*time.Hour + 31*time.Minute}, 1, 0},
	} {
		var runs []time.Time
		for _, d := range tt.runs {
			runs = append(runs, t0.Add(d))
		}
		end := runs[len(runs)-1]
		g, short, _ := gaps(ents, runs, t0, end, end.Add(time.Hour))
		if len(g) != tt.wantGaps || short != tt.wantShort {
			t.Errorf("%s: gaps() = %v, %d short; want %d gaps, %d short", tt.name, g, short, tt.wantGaps, tt.wantShort)
		}
		if len(g) == 1 && g[0].Cause != "no-run" {
			t.Errorf("%s: cause %q; want no-run", tt.name, g[0].Cause)
		}
	}
	// A night off: stop at 20:00, start and run at 08:00 the next day.
	night := append(entriesAt(t0, "service.start"), entriesAt(t0.Add(20*time.Hour), "service.stop")...)
	night = append(night, entriesAt(t0.Add(32*time.Hour), "service.start")...)
	runs := hourly(t0, 19)
	runs = append(runs, t0.Add(32*time.Hour))
	g, short, longest := gaps(night, runs, t0, t0.Add(32*time.Hour), t0.Add(33*time.Hour))
	if len(g) != 0 || short != 1 || longest != 13*3600 {
		t.Errorf("night off: gaps() = %v, %d short (longest %d s); want none listed, 1 short of 13 h", g, short, longest)
	}
	// The same stop for two days is listed, with its cause.
	long := append(entriesAt(t0, "service.start"), entriesAt(t0.Add(20*time.Hour), "service.stop")...)
	runs = append(hourly(t0, 19), t0.Add(68*time.Hour))
	g, _, _ = gaps(long, runs, t0, t0.Add(68*time.Hour), t0.Add(69*time.Hour))
	if len(g) != 1 || g[0].Cause != "service-stopped" || g[0].Seconds != 49*3600 {
		t.Errorf("two days off: gaps() = %+v; want one service-stopped gap of 49 h", g)
	}
}

// hourly returns runs at t0 and every hour up to n hours after it.
func hourly(t0 time.Time, n int) []time.Time {
	var out []time.Time
	for i := 0; i <= n; i++ {
		out = append(out, t0.Add(time.Duration(i)*time.Hour))
	}
	return out
}
