package report

import (
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

func entry(t time.Time, k audit.Kind, fields ...audit.Field) audit.Entry {
	return audit.Entry{Time: t, Kind: k, Actor: "service", Fields: fields}
}

// TestEntriesRead: fields other helpers added to kinds are read — a
// refusal entry standing for a flood, the PC's boot after an unclean stop,
// an interrupted export cleaned up later, a patron look-up.
func TestEntriesRead(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	sum := strings.Repeat("ab", 32)
	f := &Facts{Config: config.Default(), Now: t0.Add(48 * time.Hour), Entries: []audit.Entry{
		entry(t0, audit.ServiceStart, audit.Token("version", "x")),
		entry(t0.Add(time.Minute), audit.APIRefused, audit.Token("why", "too-many-connections"), audit.Int("count", 250)),
		entry(t0.Add(2*time.Minute), audit.APIRefused, audit.Token("why", "not-in-group")),
		entry(t0.Add(3*time.Minute), audit.ExportStart, audit.Hash("order_sha256", make([]byte, 32)),
			audit.Time("from", t0.Add(-time.Hour)), audit.Time("to", t0), audit.Int("pcs", 1)),
		entry(t0.Add(time.Hour), audit.ServiceUncleanStop, audit.Time("last_alive", t0.Add(50*time.Minute)), audit.Token("boot", "changed")),
		entry(t0.Add(time.Hour), audit.ServiceStart, audit.Token("version", "x")),
		entry(t0.Add(61*time.Minute), audit.ExportCleaned, audit.Hash("order_sha256", make([]byte, 32)), audit.Token("outcome", "removed")),
		entry(t0.Add(62*time.Minute), audit.BookingPatronLookup, audit.Int("found", 3)),
	}}
	// Hash takes bytes; build the digest the way the log stores it.
	f.Entries[3].Fields[0].Value, f.Entries[6].Fields[0].Value = sum, sum
	p := Period{From: t0.Add(-time.Hour), To: t0.Add(24 * time.Hour)}
	r := BuildReview(f, p, "en", time.UTC)
	if len(r.API) != 2 || r.API[1].What != "too-many-connections" || r.API[1].Count != 250 || r.API[0].Count != 1 {
		t.Errorf("API refusals = %+v; want 1 not-in-group and 250 too-many-connections", r.API)
	}
	if len(r.Service.Unclean) != 1 || r.Service.Unclean[0].Boot != "changed" {
		t.Errorf("unclean stops = %+v; want one with boot changed", r.Service.Unclean)
	}
	if len(r.Exports) != 1 || r.Exports[0].Result != "unfinished" || r.Exports[0].Cleaned != "removed" {
		t.Errorf("exports = %+v; want one unfinished, its partial bundle removed", r.Exports)
	}
	if r.Config.PatronLookups != 1 || r.Config.PatronLookupsFound != 3 {
		t.Errorf("patron look-ups = %d finding %d; want 1 finding 3", r.Config.PatronLookups, r.Config.PatronLookupsFound)
	}
	text := string(renderText(r.document(newPrinter("en", time.UTC))))
	for _, want := range []string{"partial bundle removed: removed", "too-many-connections     250"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("text review lacks %q", want)
		}
	}
}

// TestTextIsPrintable: a name from the config cannot paint the terminal.
func TestTextIsPrintable(t *testing.T) {
	cfg := config.Default()
	cfg.Library.Name = "Bib\x1b[2J\x1b[1;1Hcarrel: all clear\u202e"
	f := &Facts{Config: cfg, Now: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), Verify: Verification{OK: true}}
	out := string(renderText(BuildProcessing(f, "en", time.UTC).document(newPrinter("en", time.UTC))))
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Errorf("text report carries an escape or bidi override: %q", out[:200])
	}
	if !strings.Contains(out, "Bib\uFFFD[2J") {
		t.Errorf("the name is not shown with the escape replaced")
	}
}
