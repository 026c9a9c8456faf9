package misuse

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
)

// State is what a case means for this PC right now.
type State string

const (
	StateActive     State = "active"       // valid, in scope, in force: traffic is logged under it
	StatePending    State = "pending"      // valid, but its start (or its notice) is still ahead
	StateEnded      State = "ended"        // valid, but over
	StateOutOfScope State = "out-of-scope" // valid, but not for this PC
	StateRefused    State = "refused"      // breaks a rule: never captures
)

// CaseDecision is the verdict on one declared case.
type CaseDecision struct {
	ID     string // the case id, or "#N" for a case without one
	State  State
	Reason string // why it is not active; for a refused case every broken rule, with its key
	// Broken lists the rules a refused case breaks, one "key: message" each.
	Broken []string
	Case   config.Case
}

// Decision is the answer of Decide.
type Decision struct {
	// Capture says whether traffic may be logged now.
	Capture bool
	// Case is the case capture runs under (when Capture).
	Case config.Case
	// Mode and Snaplen are what capture records: the least invasive mode
	// among the active cases (see Decide).
	Mode    string
	Snaplen int
	// Until is when the capture's authority ends, unless the config changes.
	Until time.Time
	// Also lists other active cases covering this PC at the same time.
	Also []string
	// Reason says, in one line, why capture is on or off.
	Reason string
	// Next is the next moment the decision changes by the clock alone (a
	// start, an end, a notice time); zero when nothing is scheduled.
	Next time.Time
	// Cases is the verdict on every declared case, in file order.
	Cases []CaseDecision
}

// Categories a case may declare.
var Categories = []string{"illegal-content", "abuse-of-service", "attack-on-network", "other"}

// Decide applies every rule of guarantee G2 to the config for this PC at
// now. It reads nothing but its arguments.
//
// When several valid cases cover this PC at once, capture runs under the
// one with the earliest start (then the smallest id), in the least invasive
// mode any of them asks for: metadata over packets, and the smallest snap
// length. Collecting no more than the purpose needs is the law's rule; a
// case that truly needs packets must not overlap a metadata case on the
// same PC, and status says so when it does.
func Decide(cfg *config.Config, pc string, now time.Time) Decision {
	var d Decision
	seen := map[string]bool{}
	var active []config.Case
	for _, c := range cfg.Cases {
		cd := judge(cfg, c, pc, now, seen)
		d.Cases = append(d.Cases, cd)
		if cd.State == StateActive {
			active = append(active, c)
		}
		if cd.State != StateRefused && cd.State != StateOutOfScope {
			d.Next = earliest(d.Next, now, c.Start, c.End, c.NoticePostedAt, c.EndedAt)
		}
	}
	if len(active) == 0 {
		d.Reason = offReason(d.Cases)
		return d
	}
	sort.SliceStable(active, func(i, j int) bool {
		if !active[i].Start.Equal(active[j].Start) {
			return active[i].Start.Before(active[j].Start)
		}
		return active[i].ID < active[j].ID
	})
	d.Capture, d.Case = true, active[0]
	d.Mode, d.Snaplen, d.Until = config.ModePackets, 0, active[0].EffectiveEnd()
	for _, c := range active {
		if c.Mode == config.ModeMetadata {
			d.Mode, d.Snaplen = config.ModeMetadata, 0
		} else if d.Mode == config.ModePackets && (d.Snaplen == 0 || c.Snaplen < d.Snaplen) {
			d.Snaplen = c.Snaplen
		}
		if c.ID != d.Case.ID {
			d.Also = append(d.Also, c.ID)
		}
	}
	d.Reason = fmt.Sprintf("case %s is in force until %s", d.Case.ID, d.Until.UTC().Format(time.RFC3339))
	if len(d.Also) > 0 {
		d.Reason += fmt.Sprintf(" (also in force: %s)", strings.Join(d.Also, ", "))
	}
	return d
}

// judge applies the rules to one case.
func judge(cfg *config.Config, c config.Case, pc string, now time.Time, seen map[string]bool) CaseDecision {
	cd := CaseDecision{ID: c.Name(), Case: c}
	var broken []string
	bad := func(key, format string, a ...any) {
		broken = append(broken, key+": "+fmt.Sprintf(format, a...))
	}
	for _, p := range c.Problems {
		bad(p.Key, "%s", p.Msg)
	}
	switch {
	case c.ID == "":
		bad("id", "missing")
	case !config.ValidCaseID(c.ID):
		bad("id", "must be 1 to 63 letters, digits, '.', '_' or '-'")
	case seen[c.ID]:
		bad("id", "used by an earlier case in the file")
	}
	seen[c.ID] = true
	if strings.TrimSpace(c.Reason) == "" {
		bad("reason", "missing: say which misuse was identified")
	}
	if !slices.Contains(Categories, c.Category) {
		bad("category", "must be one of %s", strings.Join(Categories, ", "))
	}
	declared, approved := person(c.DeclaredBy), person(c.ApprovedBy)
	switch {
	case declared == "":
		bad("declared_by", "missing")
	case approved == "":
		bad("approved_by", "missing: a second person must approve the case")
	case declared == approved:
		bad("approved_by", "is the same person as declared_by (names are compared ignoring case, accents, spacing and invisible characters); a second person must approve the case")
	}
	if c.NoticePostedAt.IsZero() {
		bad("notice_posted_at", "missing: the notice must be posted at the PCs before traffic is logged")
	}
	if c.Start.IsZero() {
		bad("start", "missing")
	}
	if c.End.IsZero() {
		bad("end", "missing")
	}
	if !c.Start.IsZero() && !c.End.IsZero() {
		maxDays := min(cfg.Capture.MaxCaseDays, config.MaxCaseDaysCeiling)
		switch {
		case !c.End.After(c.Start):
			bad("end", "must be after start")
		case c.End.Sub(c.Start) > time.Duration(maxDays)*24*time.Hour:
			bad("end", "the case runs %s, longer than capture.max_case_days (%d days)", days(c.End.Sub(c.Start)), maxDays)
		}
	}
	if !c.EndedAt.IsZero() && person(c.EndedBy) == "" {
		bad("ended_by", "missing: say who ended the case")
	}
	if len(c.PCs) == 0 {
		bad("pcs", `missing: list the PC ids in scope, or ["*"] for every PC`)
	}
	for i, p := range c.PCs {
		if p != "*" && !config.ValidPCID(p) {
			bad(fmt.Sprintf("pcs[%d]", i), "not a valid PC id")
		}
	}
	switch c.Mode {
	case config.ModeMetadata:
		if c.Snaplen != 0 {
			bad("snaplen", "only applies to mode packets")
		}
	case config.ModePackets:
		if c.Snaplen == 0 {
			bad("snaplen", "mode packets needs a snap length: the bytes kept of each packet")
		}
	default:
		bad("mode", "must be metadata or packets")
	}
	if len(cfg.Capture.Recipients) == 0 {
		bad("capture.recipients", "no head librarian's public key is configured, so traffic could not be sealed")
	}
	if len(broken) > 0 {
		cd.State, cd.Reason, cd.Broken = StateRefused, strings.Join(broken, "; "), broken
		return cd
	}
	switch e := c.EffectiveEnd(); {
	case !c.Covers(pc):
		cd.State, cd.Reason = StateOutOfScope, fmt.Sprintf("PC %s is not in its scope", pc)
	case !now.Before(e):
		cd.State, cd.Reason = StateEnded, "ended at "+e.UTC().Format(time.RFC3339)
	case now.Before(c.Start):
		cd.State, cd.Reason = StatePending, "starts at "+c.Start.UTC().Format(time.RFC3339)
	case now.Before(c.NoticePostedAt):
		cd.State, cd.Reason = StatePending, "the notice is posted at "+c.NoticePostedAt.UTC().Format(time.RFC3339)+"; nothing is logged before"
	default:
		cd.State = StateActive
	}
	return cd
}

// earliest returns the earliest of ts that lies after now, or cur.
func earliest(cur, now time.Time, ts ...time.Time) time.Time {
	for _, t := range ts {
		if t.After(now) && (cur.IsZero() || t.Before(cur)) {
			cur = t
		}
	}
	return cur
}

func offReason(cases []CaseDecision) string {
	if len(cases) == 0 {
		return "no misuse case is declared; only booking times are recorded"
	}
	var parts []string
	for _, c := range cases {
		parts = append(parts, fmt.Sprintf("case %s: %s", c.ID, c.Reason))
	}
	return "no case is in force for this PC; " + strings.Join(parts, "; ")
}

func days(d time.Duration) string {
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
