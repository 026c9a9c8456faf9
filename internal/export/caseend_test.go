package export

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/misuse"
)

// casesEndedEarly: one case ended early with ended_at, one ended by moving
// its end, one for another PC. All run over the fixture's day.
const casesEndedEarly = `
[[case]]
id = "ended-at"
reason = "Repeated viewing of illegal content in the reading room"
category = "illegal-content"
declared_by = "Staff One"
approved_by = "Staff Two"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-01T09:00:00Z
end = 2026-03-10T20:00:00Z
ended_at = 2026-03-02T10:30:00Z
ended_by = "Staff One"
pcs = ["pc-01"]

[[case]]
id = "end-moved"
reason = "Abuse of the printing service"
category = "abuse-of-service"
declared_by = "Staff One"
approved_by = "Staff Two"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-01T09:00:00Z
end = 2026-03-02T11:15:00Z
ended_at = 2026-03-05T00:00:00Z
ended_by = "Staff One"
pcs = ["*"]

[[case]]
id = "other-pc"
reason = "Attack on the library network"
category = "attack-on-network"
declared_by = "Staff One"
approved_by = "Staff Two"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-01T09:00:00Z
end = 2026-03-10T20:00:00Z
pcs = ["pc-02"]
`

// TestExportAgreesWithControllerOnCaseEnd: the cases an export names for a
// window are exactly those the capture decision held in force on this PC
// at some moment of the window. A case ended early (ended_at before end)
// is over at ended_at for both; a case for another PC is in neither.
func TestExportAgreesWithControllerOnCaseEnd(t *testing.T) {
	f := newFixture(t, casesEndedEarly)
	f.close()
	for i, w := range []Window{
		{From: at("10:00"), To: at("12:00")}, // both still in force at its start
		{From: at("10:45"), To: at("12:00")}, // after ended_at, before the moved end
		{From: at("11:30"), To: at("12:00")}, // after both
		{From: at("10:29"), To: at("10:30")}, // the last minute before ended_at
		{From: at("10:30"), To: at("10:31")}, // the first minute after it
	} {
		o := f.options(filepath.Join(f.root, "bundle-"+string(rune('a'+i))))
		o.Window = w
		res, err := f.export(o)
		if err != nil {
			t.Fatalf("export of %v: %v", w, err)
		}
		var inForce []string
		for _, c := range f.cfg.Cases {
			if heldInForce(f.cfg.Cases, c.ID, f.cfg.PC.ID, w, f) {
				inForce = append(inForce, c.ID)
			}
		}
		slices.Sort(inForce)
		if !slices.Equal(res.Cases, inForce) {
			t.Errorf("window %s–%s: export names cases %v; the capture decision held %v in force",
				w.From.Format("15:04"), w.To.Format("15:04"), res.Cases, inForce)
		}
	}
}

// heldInForce asks misuse.Decide, at the window's start and at every case
// boundary inside it (the decision only changes there), whether case id was
// active on pc.
func heldInForce(cases []config.Case, id, pc string, w Window, f *fixture) bool {
	instants := []time.Time{w.From}
	for _, c := range cases {
		for _, t := range []time.Time{c.Start, c.End, c.EndedAt, c.NoticePostedAt} {
			if !t.IsZero() && !t.Before(w.From) && t.Before(w.To) {
				instants = append(instants, t)
			}
		}
	}
	for _, now := range instants {
		for _, cd := range misuse.Decide(f.cfg, pc, now).Cases {
			if cd.ID == id && cd.State == misuse.StateActive {
				return true
			}
		}
	}
	return false
}
