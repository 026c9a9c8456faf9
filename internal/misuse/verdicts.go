package misuse

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/carrel-lib/carrel/internal/audit"
)

// verdictKey names one [[case]] table across decisions: its name and which
// table of that name it is. Two tables may share a name (a repeated id, or
// an explicit id "#2" beside the second table without one); each keeps its
// own verdict, or the two would take turns and be audited again at every
// decision.
type verdictKey struct {
	name string
	nth  int
}

// auditVerdicts records each case's verdict when it is new or changed:
// accepted (valid, whether pending, active, ended or out of scope) or
// rejected (with the broken rules). A checkpoint follows any change. A
// verdict is audited once per change, however often the same file is
// decided on; a case removed from the file and put back is audited again.
func (c *Controller) auditVerdicts(ctx context.Context, d Decision) {
	changed := false
	count := map[string]int{}
	present := make(map[verdictKey]bool, len(d.Cases))
	for _, cd := range d.Cases {
		key := verdictKey{name: cd.ID, nth: count[cd.ID]}
		count[cd.ID]++
		present[key] = true
		valid := cd.State != StateRefused
		fp := fingerprint(cd, valid)
		if c.seen[key] == fp {
			continue
		}
		c.seen[key] = fp
		changed = true
		if !valid {
			c.log.Warn("misuse case refused", "case", cd.ID, "why", cd.Reason)
			c.record(ctx, audit.Event{Kind: audit.CaseRejected, Actor: "service", Fields: []audit.Field{
				audit.Token("case", auditCase(cd.ID)), audit.Text("why", truncate(cd.Reason, 2000))}})
			continue
		}
		k := cd.Case
		c.record(ctx, audit.Event{Kind: audit.CaseAccepted, Actor: "service", Fields: []audit.Field{
			audit.Token("case", auditCase(cd.ID)), audit.Token("mode", k.Mode), audit.Time("start", k.Start),
			audit.Time("end", k.EffectiveEnd()), audit.Time("notice_posted_at", k.NoticePostedAt)}})
	}
	for key := range c.seen {
		if !present[key] {
			delete(c.seen, key)
		}
	}
	if changed {
		c.checkpoint(ctx)
	}
}

// fingerprint changes when the case's verdict or any of its fields does, so
// that extending a case is audited again but re-reading it is not. The
// reason of a valid case only says where the clock stands (pending,
// ended), which its start and end already record: it is left out, or a
// case would be accepted again at its start and at its end.
func fingerprint(cd CaseDecision, valid bool) string {
	h := sha256.New()
	k := cd.Case
	why := ""
	if !valid {
		why = cd.Reason
	}
	fmt.Fprintf(h, "%v|%q|%q|%q|%q|%q|%s|%s|%s|%s|%q|%q|%q|%d", valid, why, k.ID, k.Reason, k.Category,
		k.DeclaredBy+"\x00"+k.ApprovedBy, k.NoticePostedAt, k.Start, k.End, k.EndedAt, k.EndedBy, k.PCs, k.Mode, k.Snaplen)
	return fmt.Sprintf("%x", h.Sum(nil))
}
