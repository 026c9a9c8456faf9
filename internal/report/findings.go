package report

import (
	"time"
)

// Finding is something in a report that needs action, with the rule
// behind it and the points of the legal frame (shared/PRODUCT.md, "The
// legal frame") that rule rests on.
type Finding struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Basis   string `json:"basis"`
	Frame   []int  `json:"frame_points"`
}

// rule is one check of the review. Its text lives in the catalogue under
// "rule.<id>" (what the rule says) and the messages it returns.
type rule struct {
	id    string
	frame []int
	check func(r *Review, tr printer) []string
}

// Rules are the review's checks, in the order findings are printed. Each
// has a table test (findings_test.go) that fails when it is removed.
var rules = []rule{
	{"audit-log-fails-verify", []int{9, 8}, func(r *Review, tr printer) []string {
		if r.Audit.OK {
			return nil
		}
		return []string{tr.t("finding.audit-log-fails-verify", r.Audit.Problem)}
	}},
	{"booking-retention-above-28-days", []int{1, 6}, func(r *Review, tr printer) []string {
		if time.Duration(r.Retention.BookingRetentionSeconds)*time.Second <= MaxBookingRetention {
			return nil
		}
		return []string{tr.t("finding.booking-retention-above-28-days", tr.dur(secs(r.Retention.BookingRetentionSeconds)))}
	}},
	{"retention-runs-missing", []int{6}, func(r *Review, tr printer) []string {
		var out []string
		for _, g := range r.Retention.Gaps {
			out = append(out, tr.t("finding.retention-runs-missing", tr.time(g.From), tr.time(g.To), tr.dur(secs(g.Seconds)), tr.t("cause."+g.Cause)))
		}
		return out
	}},
	{"bookings-kept-past-retention", []int{6}, func(r *Review, tr printer) []string {
		if r.Retention.OverdueSeconds == 0 {
			return nil
		}
		return []string{tr.t("finding.bookings-kept-past-retention", tr.dur(secs(r.Retention.OverdueSeconds)))}
	}},
	{"traffic-kept-past-retention", []int{6}, func(r *Review, tr printer) []string {
		var out []string
		for _, c := range r.Traffic.Stored {
			if c.Segments > c.Held && c.DeleteAfter != nil && r.Meta.Made.Sub(*c.DeleteAfter) > RetentionSchedule+RetentionTolerance {
				out = append(out, tr.t("finding.traffic-kept-past-retention", c.Case, c.Segments-c.Held, tr.time(*c.DeleteAfter)))
			}
		}
		return out
	}},
	{"legal-hold-older-than-180-days", []int{6, 5}, func(r *Review, tr printer) []string {
		var out []string
		for _, h := range r.Traffic.Holds {
			if time.Duration(h.AgeSeconds)*time.Second > HoldReviewAge {
				out = append(out, tr.t("finding.legal-hold-older-than-180-days", h.OrderRef, tr.date(h.Placed), h.Segments))
			}
		}
		return out
	}},
	{"packets-case", []int{7}, func(r *Review, tr printer) []string {
		var out []string
		for _, c := range r.Cases {
			if c.Mode == "packets" && c.Verdict != "refused" {
				out = append(out, tr.t("finding.packets-case", c.ID))
			}
		}
		return out
	}},
	{"case-refused", []int{2, 4}, func(r *Review, tr printer) []string {
		var out []string
		for _, c := range r.Cases {
			if c.Verdict == "refused" {
				out = append(out, tr.t("finding.case-refused", c.ID))
			}
		}
		return out
	}},
	{"no-verified-off-pc-checkpoint", []int{8, 9}, func(r *Review, tr printer) []string {
		if r.Audit.Witnessed > 0 {
			return nil
		}
		if t := r.Audit.Trusted; t != nil && r.Meta.Period != nil && !t.Covers.Before(r.Meta.Period.From) {
			return nil
		}
		return []string{tr.t("finding.no-verified-off-pc-checkpoint")}
	}},
	{"witness-refused", []int{8, 9}, func(r *Review, tr printer) []string {
		var out []string
		for _, c := range r.Audit.WitnessRefusals {
			out = append(out, tr.t("finding.witness-refused", c.What, c.Count))
		}
		return out
	}},
	{"witness-refusal-unacknowledged", []int{8, 9}, func(r *Review, tr printer) []string {
		// Apart from witness-refused, which counts the period's refusals:
		// this one is about now. A refusal nobody acknowledged means nobody
		// has looked into why the log stopped being witnessed.
		var out []string
		for _, p := range r.Audit.PendingRefusals {
			out = append(out, tr.t("finding.witness-refusal-unacknowledged", p.Witness, tr.tOr("refusal.", p.Why), tr.time(p.Since), p.LogSize))
		}
		return out
	}},
	{"witness-behind", []int{8, 9}, func(r *Review, tr printer) []string {
		var out []string
		for _, w := range r.Audit.Witnesses {
			if b := w.Behind; b != nil {
				out = append(out, tr.t("finding.witness-behind", w.Name, b.Entries, tr.time(b.Due), b.Covered))
			}
		}
		return out
	}},
	{"witness-cosignature-rejected", []int{8, 9}, func(r *Review, tr printer) []string {
		// One finding per witness and reason: a table rewritten wholesale
		// is one thing to look into, not hundreds.
		n := map[[2]string]int{}
		var order [][2]string
		for _, c := range r.Audit.CosignaturesRejected {
			k := [2]string{c.Witness, c.Why}
			if n[k] == 0 {
				order = append(order, k)
			}
			n[k]++
		}
		var out []string
		for _, k := range order {
			out = append(out, tr.t("finding.witness-cosignature-rejected", n[k], k[0], tr.t("cosig."+k[1])))
		}
		return out
	}},
	{"refused-configs", []int{8}, func(r *Review, tr printer) []string {
		if len(r.Config.Rejected) == 0 {
			return nil
		}
		return []string{tr.t("finding.refused-configs", len(r.Config.Rejected))}
	}},
	{"unclean-stops", []int{8, 6}, func(r *Review, tr printer) []string {
		if len(r.Service.Unclean) == 0 {
			return nil
		}
		return []string{tr.t("finding.unclean-stops", len(r.Service.Unclean), r.Service.Interrupted)}
	}},
	{"capture-incomplete", []int{8}, func(r *Review, tr printer) []string {
		if r.Capture.Errors == 0 && r.Capture.Quota == 0 && r.Traffic.Lost == 0 {
			return nil
		}
		return []string{tr.t("finding.capture-incomplete", r.Capture.Errors, r.Capture.Quota, r.Traffic.Lost)}
	}},
	{"export-not-finished", []int{5}, func(r *Review, tr printer) []string {
		var out []string
		for _, e := range r.Exports {
			if e.Result != "done" {
				out = append(out, tr.t("finding.export-not-finished", tr.time(e.At), tr.t("export."+e.Result)))
			}
		}
		return out
	}},
	{"api-refusals", []int{8}, func(r *Review, tr printer) []string {
		n := 0
		for _, c := range r.API {
			n += c.Count
		}
		if n == 0 {
			return nil
		}
		return []string{tr.t("finding.api-refusals", n)}
	}},
	{"library-details-missing", []int{9, 8}, libraryMissing},
}

func libraryMissing(r *Review, tr printer) []string {
	var missing []string
	l := r.Meta.Library
	for _, f := range []struct{ key, v string }{{"library.name", l.Name}, {"library.responsible", l.Responsible}, {"library.contact", l.Contact}} {
		if f.v == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []string{tr.t("finding.library-details-missing", joinList(missing))}
}

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// Findings applies every rule to r.
func Findings(r *Review, tr printer) []Finding {
	out := []Finding{}
	for _, ru := range rules {
		for _, msg := range ru.check(r, tr) {
			out = append(out, Finding{Rule: ru.id, Message: msg, Basis: tr.basis(ru), Frame: ru.frame})
		}
	}
	return out
}

// processingRules are the rules that judge what the record of processing
// states (the config), not what happened.
var processingRules = []string{"booking-retention-above-28-days", "packets-case", "library-details-missing"}

func joinList(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
