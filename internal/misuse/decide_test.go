package misuse

import (
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
)

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// valid is a case that is in force at t0+1h on pc-01.
func valid() config.Case {
	return config.Case{
		ID: "2026-03", Reason: "illegal content seen on reading-room PCs", Category: "illegal-content",
		DeclaredBy: "Anne Berg", ApprovedBy: "Bo Dahl",
		NoticePostedAt: t0.Add(-30 * time.Minute), Start: t0, End: t0.Add(20 * 24 * time.Hour),
		PCs: []string{"pc-01", "pc-02"}, Mode: config.ModeMetadata,
	}
}

func cfgWith(cases ...config.Case) *config.Config {
	c := config.Default()
	c.PC.ID = "pc-01"
	c.Capture.Recipients = []string{recipient}
	for i := range cases {
		cases[i].Index = i
	}
	c.Cases = cases
	return c
}

func TestDecideRules(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name   string
		mod    func(c *config.Case, cfg *config.Config)
		now    time.Time
		pc     string
		want   State
		reason string // substring of the case's reason
	}{
		{"valid and in force", nil, t0.Add(time.Hour), "", StateActive, ""},
		// start boundary
		{"1s before start", nil, t0.Add(-sec), "", StatePending, "starts at"},
		{"at start", nil, t0, "", StateActive, ""},
		{"1s after start", nil, t0.Add(sec), "", StateActive, ""},
		// end boundary
		{"1s before end", nil, t0.Add(20*24*time.Hour - sec), "", StateActive, ""},
		{"at end", nil, t0.Add(20 * 24 * time.Hour), "", StateEnded, "ended at"},
		{"1s after end", nil, t0.Add(20*24*time.Hour + sec), "", StateEnded, "ended at"},
		// notice boundary
		{"notice 1s in the future", func(c *config.Case, _ *config.Config) { c.NoticePostedAt = t0.Add(time.Hour + sec) }, t0.Add(time.Hour), "", StatePending, "notice is posted at"},
		{"notice exactly now", func(c *config.Case, _ *config.Config) { c.NoticePostedAt = t0.Add(time.Hour) }, t0.Add(time.Hour), "", StateActive, ""},
		{"notice 1s ago", func(c *config.Case, _ *config.Config) { c.NoticePostedAt = t0.Add(time.Hour - sec) }, t0.Add(time.Hour), "", StateActive, ""},
		{"notice missing", func(c *config.Case, _ *config.Config) { c.NoticePostedAt = time.Time{} }, t0.Add(time.Hour), "", StateRefused, "notice_posted_at: missing"},
		// four eyes
		{"approved_by missing", func(c *config.Case, _ *config.Config) { c.ApprovedBy = "" }, t0.Add(time.Hour), "", StateRefused, "approved_by: missing"},
		{"approved_by blank", func(c *config.Case, _ *config.Config) { c.ApprovedBy = "   " }, t0.Add(time.Hour), "", StateRefused, "approved_by: missing"},
		{"declared_by missing", func(c *config.Case, _ *config.Config) { c.DeclaredBy = "" }, t0.Add(time.Hour), "", StateRefused, "declared_by: missing"},
		{"same person", func(c *config.Case, _ *config.Config) { c.ApprovedBy = c.DeclaredBy }, t0.Add(time.Hour), "", StateRefused, "same person"},
		{"same person, other case and spacing", func(c *config.Case, _ *config.Config) { c.ApprovedBy = " anne  BERG " }, t0.Add(time.Hour), "", StateRefused, "same person"},
		// length
		{"30 days exactly", func(c *config.Case, _ *config.Config) { c.End = t0.Add(30 * 24 * time.Hour) }, t0.Add(time.Hour), "", StateActive, ""},
		{"30 days and 1s", func(c *config.Case, _ *config.Config) { c.End = t0.Add(30*24*time.Hour + sec) }, t0.Add(time.Hour), "", StateRefused, "longer than capture.max_case_days (30 days)"},
		{"31 days", func(c *config.Case, _ *config.Config) { c.End = t0.Add(31 * 24 * time.Hour) }, t0.Add(time.Hour), "", StateRefused, "longer than"},
		{"max_case_days 60 allows 45", func(c *config.Case, cfg *config.Config) {
			c.End = t0.Add(45 * 24 * time.Hour)
			cfg.Capture.MaxCaseDays = 60
		}, t0.Add(time.Hour), "", StateActive, ""},
		{"ceiling holds even if config says more", func(c *config.Case, cfg *config.Config) {
			c.End = t0.Add(91 * 24 * time.Hour)
			cfg.Capture.MaxCaseDays = 365
		}, t0.Add(time.Hour), "", StateRefused, "(90 days)"},
		{"end before start", func(c *config.Case, _ *config.Config) { c.End = t0.Add(-time.Hour) }, t0.Add(time.Hour), "", StateRefused, "end: must be after start"},
		{"end equals start", func(c *config.Case, _ *config.Config) { c.End = t0 }, t0.Add(time.Hour), "", StateRefused, "end: must be after start"},
		{"start missing", func(c *config.Case, _ *config.Config) { c.Start = time.Time{} }, t0.Add(time.Hour), "", StateRefused, "start: missing"},
		{"end missing", func(c *config.Case, _ *config.Config) { c.End = time.Time{} }, t0.Add(time.Hour), "", StateRefused, "end: missing"},
		// ending early
		{"ended_at passed", func(c *config.Case, _ *config.Config) { c.EndedAt, c.EndedBy = t0.Add(time.Hour-sec), "Bo Dahl" }, t0.Add(time.Hour), "", StateEnded, "ended at"},
		{"ended_at ahead", func(c *config.Case, _ *config.Config) { c.EndedAt, c.EndedBy = t0.Add(time.Hour+sec), "Bo Dahl" }, t0.Add(time.Hour), "", StateActive, ""},
		{"ended_at without ended_by", func(c *config.Case, _ *config.Config) { c.EndedAt = t0.Add(2 * time.Hour) }, t0.Add(time.Hour), "", StateRefused, "ended_by: missing"},
		{"end set to now", func(c *config.Case, _ *config.Config) { c.End = t0.Add(time.Hour) }, t0.Add(time.Hour), "", StateEnded, ""},
		// scope
		{"PC not in scope", nil, t0.Add(time.Hour), "pc-09", StateOutOfScope, "not in its scope"},
		{"wildcard scope", func(c *config.Case, _ *config.Config) { c.PCs = []string{"*"} }, t0.Add(time.Hour), "pc-09", StateActive, ""},
		{"scope missing", func(c *config.Case, _ *config.Config) { c.PCs = nil }, t0.Add(time.Hour), "", StateRefused, "pcs: missing"},
		{"scope with a bad id", func(c *config.Case, _ *config.Config) { c.PCs = []string{"pc 01"} }, t0.Add(time.Hour), "", StateRefused, "pcs[0]"},
		// the rest
		{"no recipient", func(_ *config.Case, cfg *config.Config) { cfg.Capture.Recipients = nil }, t0.Add(time.Hour), "", StateRefused, "capture.recipients"},
		{"id missing", func(c *config.Case, _ *config.Config) { c.ID = "" }, t0.Add(time.Hour), "", StateRefused, "id: missing"},
		{"id with a slash", func(c *config.Case, _ *config.Config) { c.ID = "2026/03" }, t0.Add(time.Hour), "", StateRefused, "id: must be"},
		{"reason missing", func(c *config.Case, _ *config.Config) { c.Reason = " " }, t0.Add(time.Hour), "", StateRefused, "reason: missing"},
		{"category unknown", func(c *config.Case, _ *config.Config) { c.Category = "curiosity" }, t0.Add(time.Hour), "", StateRefused, "category"},
		{"mode unknown", func(c *config.Case, _ *config.Config) { c.Mode = "everything" }, t0.Add(time.Hour), "", StateRefused, "mode"},
		{"packets without snaplen", func(c *config.Case, _ *config.Config) { c.Mode = config.ModePackets }, t0.Add(time.Hour), "", StateRefused, "snaplen"},
		{"packets with snaplen", func(c *config.Case, _ *config.Config) { c.Mode, c.Snaplen = config.ModePackets, 256 }, t0.Add(time.Hour), "", StateActive, ""},
		{"snaplen on metadata", func(c *config.Case, _ *config.Config) { c.Snaplen = 256 }, t0.Add(time.Hour), "", StateRefused, "only applies to mode packets"},
		{"decode problem", func(c *config.Case, _ *config.Config) {
			c.Problems = []config.Problem{{Key: "aproved_by", Msg: "unknown key"}}
		}, t0.Add(time.Hour), "", StateRefused, "aproved_by: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			cfg := cfgWith()
			if tt.mod != nil {
				tt.mod(&c, cfg)
			}
			cfg.Cases = []config.Case{c}
			pc := tt.pc
			if pc == "" {
				pc = "pc-01"
			}
			d := Decide(cfg, pc, tt.now)
			got := d.Cases[0]
			if got.State != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("Decide() case = %s %q; want %s containing %q", got.State, got.Reason, tt.want, tt.reason)
			}
			if d.Capture != (tt.want == StateActive) {
				t.Errorf("Decide().Capture = %v; want %v (reason %q)", d.Capture, tt.want == StateActive, d.Reason)
			}
			if !d.Capture && !strings.Contains(d.Reason, "case "+c.Name()+":") {
				t.Errorf("Decide().Reason = %q; want it to name the case", d.Reason)
			}
		})
	}
}

func TestDecideReportsEveryBrokenRule(t *testing.T) {
	c := valid()
	c.ApprovedBy, c.NoticePostedAt, c.Category = "", time.Time{}, "x"
	d := Decide(cfgWith(c), "pc-01", t0.Add(time.Hour))
	for _, want := range []string{"approved_by", "notice_posted_at", "category"} {
		if !strings.Contains(d.Cases[0].Reason, want) {
			t.Errorf("reason %q does not name %s", d.Cases[0].Reason, want)
		}
	}
}

func TestDecideNoCases(t *testing.T) {
	d := Decide(cfgWith(), "pc-01", t0)
	if d.Capture || !d.Next.IsZero() || !strings.Contains(d.Reason, "no misuse case is declared") {
		t.Errorf("Decide(no cases) = %+v; want off, nothing scheduled", d)
	}
}

func TestDecideNext(t *testing.T) {
	c := valid()
	c.NoticePostedAt = t0.Add(-time.Hour)
	cfg := cfgWith(c)
	steps := []struct {
		now  time.Time
		next time.Time
		on   bool
	}{
		{t0.Add(-2 * time.Hour), t0.Add(-time.Hour), false}, // next: notice
		{t0.Add(-time.Hour), t0, false},                     // next: start
		{t0, c.End, true},                                   // next: end
		{c.End, time.Time{}, false},                         // nothing left
	}
	for _, s := range steps {
		d := Decide(cfg, "pc-01", s.now)
		if d.Capture != s.on || !d.Next.Equal(s.next) {
			t.Errorf("Decide(at %v) = capture %v next %v; want %v next %v", s.now, d.Capture, d.Next, s.on, s.next)
		}
	}
	// A refused case schedules nothing: it can never become active by time alone.
	bad := valid()
	bad.ApprovedBy = ""
	if d := Decide(cfgWith(bad), "pc-01", t0.Add(-time.Hour)); !d.Next.IsZero() {
		t.Errorf("Decide(refused case).Next = %v; want zero", d.Next)
	}
}

func TestDecideOverlappingCases(t *testing.T) {
	a := valid() // metadata, from t0
	b := valid()
	b.ID, b.Mode, b.Snaplen, b.Start = "2026-04", config.ModePackets, 512, t0.Add(-time.Hour)
	b.NoticePostedAt = t0.Add(-2 * time.Hour)
	c := valid()
	c.ID, c.Mode, c.Snaplen, c.Start = "2026-05", config.ModePackets, 128, t0.Add(-time.Hour)
	c.NoticePostedAt = t0.Add(-2 * time.Hour)

	d := Decide(cfgWith(a, b), "pc-01", t0.Add(time.Hour))
	if !d.Capture || d.Case.ID != "2026-04" || d.Mode != config.ModeMetadata || strings.Join(d.Also, ",") != "2026-03" {
		t.Errorf("metadata + packets: capture under %s mode %s also %v; want 2026-04 (earliest start), metadata (least invasive), also 2026-03", d.Case.ID, d.Mode, d.Also)
	}
	d = Decide(cfgWith(b, c), "pc-01", t0.Add(time.Hour))
	if d.Mode != config.ModePackets || d.Snaplen != 128 || d.Case.ID != "2026-04" {
		t.Errorf("two packets cases: mode %s snaplen %d case %s; want packets 128 under 2026-04", d.Mode, d.Snaplen, d.Case.ID)
	}
	// Before a's start only b is active, and the next change is a's start.
	d = Decide(cfgWith(a, b), "pc-01", t0.Add(-time.Minute))
	if d.Mode != config.ModePackets || len(d.Also) != 0 || !d.Next.Equal(t0) {
		t.Errorf("before a starts: mode %s also %v next %v; want packets alone, next %v", d.Mode, d.Also, d.Next, t0)
	}
	// A duplicate id refuses the later case.
	dup := valid()
	d = Decide(cfgWith(a, dup), "pc-01", t0.Add(time.Hour))
	if d.Cases[1].State != StateRefused || !strings.Contains(d.Cases[1].Reason, "used by an earlier case") {
		t.Errorf("duplicate id: %s %q; want refused", d.Cases[1].State, d.Cases[1].Reason)
	}
	// Until is the earliest authority's end, so capture stops when its case does.
	b.End = t0.Add(2 * time.Hour)
	d = Decide(cfgWith(a, b), "pc-01", t0.Add(time.Hour))
	if !d.Until.Equal(b.End) || !d.Next.Equal(b.End) {
		t.Errorf("Until, Next = %v, %v; want %v", d.Until, d.Next, b.End)
	}
}
