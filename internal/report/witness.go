package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// What the witnesses vouch for. Cosignatures live in audit.db beside the
// checkpoints, outside the hashed log: whoever administers the PC can add,
// change or delete rows there, and the witnesses table (last size, last
// error, refusal) is the service's bookkeeping, not evidence. So a
// cosignature counts only when it verifies with the witness key of the
// config in force and is on a checkpoint of this very log (its origin, a
// size the log has, the log's root at that size). Refusals are read from
// the hashed log (witness.refused, witness.acknowledged), not from the
// table.
//
// The keys come from the config on the PC, which its administrator can
// change too: the review prints each key's name and hash, so the head
// librarian can compare them with what the witnesses' operators publish.

// WitnessLag is how far behind the end of the period a witness may be: a
// configured witness whose verified cosignatures do not cover the entries
// the log held this long before the end is a finding. The service pushes
// every checkpoint within seconds and retries a witness that is down for as
// long as it takes, so a month behind means the witness stopped cosigning
// (it refuses, its key or URL changed, the PC cannot reach it) for far
// longer than an outage; a PC switched off meanwhile records no entries and
// so is never behind. A rule of "nothing in the period" would miss a
// witness that cosigned in January and never again.
const WitnessLag = 30 * 24 * time.Hour

// WitnessFacts is what the audit log shows of one configured witness.
type WitnessFacts struct {
	Name string
	Key  string // the verifier key in the config
	// KeyName and KeyHash are the key's name and hash; empty when the key
	// in the config does not parse.
	KeyName, KeyHash string
	// Cosigned are its cosignatures that verified, one per checkpoint
	// size, smallest first.
	Cosigned []CosignFact
	// Error is its last failure as the service recorded it, and ErrorAt
	// when; empty when the last push succeeded or none was made with this
	// key.
	Error   string
	ErrorAt time.Time
}

// CosignFact is one verified cosignature: the size of the checkpoint and
// the time the witness put in its signature (its own clock, signed).
type CosignFact struct {
	Size   int64
	Signed time.Time
}

// RejectedCosignature is a stored cosignature by a configured witness's
// name and key hash that does not count.
type RejectedCosignature struct {
	Witness string `json:"witness"` // its name in the config
	// Size is the size of the checkpoint it is stored beside; 0 when
	// there is none.
	Size int64 `json:"size"`
	// Why: checkpoint-missing (stored beside no checkpoint, or one that
	// does not parse), bad-signature (does not verify with the key in the
	// config), or not-this-log (on a checkpoint of another log or tree, or
	// a size this log never had).
	Why string `json:"why"`
}

// gatherWitnesses judges every stored cosignature against the witnesses of
// the config, or against the keys in.WitnessKeys gives.
func gatherWitnesses(ctx context.Context, log *audit.Log, in Input, f *Facts) error {
	f.WitnessQuorum = max(in.Config.Audit.WitnessQuorum, 1)
	if in.WitnessQuorum > 0 {
		f.WitnessQuorum = in.WitnessQuorum
	}
	witnesses := in.Config.Audit.Witnesses
	if len(in.WitnessKeys) > 0 {
		witnesses = givenWitnesses(in.WitnessKeys, in.Config.Audit.Witnesses)
		f.WitnessKeysGiven = true
	}
	f.Witnesses = []WitnessFacts{}
	f.CosignaturesRejected = []RejectedCosignature{}
	var keys []audit.WitnessKey
	index := map[string]int{} // key text → index in f.Witnesses
	type claim struct {
		name string
		hash uint32
	}
	byClaim := map[claim]int{} // key name and hash → index in f.Witnesses
	for _, w := range witnesses {
		wf := WitnessFacts{Name: w.Name, Key: w.Key, Cosigned: []CosignFact{}}
		if k, err := audit.ParseWitnessKey(w.Key); err == nil {
			wf.KeyName, wf.KeyHash = k.Name, fmt.Sprintf("%08x", k.Hash)
			keys = append(keys, k)
			index[k.Text] = len(f.Witnesses)
			byClaim[claim{k.Name, k.Hash}] = len(f.Witnesses)
		}
		f.Witnesses = append(f.Witnesses, wf)
	}
	if len(f.Witnesses) == 0 {
		return nil
	}
	rows, err := log.Cosignatures(ctx)
	if err != nil {
		return err
	}
	for _, s := range rows {
		c, k, err := audit.VerifyCosignature(s.Checkpoint, s.Line, keys)
		why := ""
		switch {
		case errors.Is(err, audit.ErrUnknownWitness):
			// By a witness the config does not list: neither evidence nor
			// a sign of tampering (a witness removed from the config).
			f.CosignaturesUnchecked++
			continue
		case s.Problem != "":
			why = "checkpoint-missing"
		case err != nil:
			why = "bad-signature"
		case !s.InLog:
			why = "not-this-log"
		}
		i, ok := index[k.Text]
		if !ok {
			// The line does not parse, so it names no key: judge it by the
			// witness and key hash the row claims. A row claiming a
			// configured witness with a line that cannot be its signature
			// is a bad signature; the service stores only lines that
			// verified.
			i, ok = byClaim[claim{s.Witness, s.KeyHash}]
			if !ok {
				f.CosignaturesUnchecked++
				continue
			}
			why = "bad-signature"
		}
		wf := &f.Witnesses[i]
		if why != "" {
			f.CosignaturesRejected = append(f.CosignaturesRejected, RejectedCosignature{Witness: wf.Name, Size: s.Checkpoint.Size, Why: why})
			continue
		}
		if i := slices.IndexFunc(wf.Cosigned, func(x CosignFact) bool { return x.Size == s.Checkpoint.Size }); i >= 0 {
			// The same size again (a checkpoint stored twice): keep the
			// earlier signature.
			if c.Signed.Before(wf.Cosigned[i].Signed) {
				wf.Cosigned[i].Signed = c.Signed
			}
			continue
		}
		wf.Cosigned = append(wf.Cosigned, CosignFact{Size: s.Checkpoint.Size, Signed: c.Signed})
	}
	states, err := log.WitnessStates(ctx)
	if err != nil {
		return err
	}
	for i := range f.Witnesses {
		wf := &f.Witnesses[i]
		sort.Slice(wf.Cosigned, func(a, b int) bool { return wf.Cosigned[a].Size < wf.Cosigned[b].Size })
		for _, st := range states {
			// The state of another key is another witness's.
			if st.Name == wf.Name && st.Key == wf.Key && st.Error != "" {
				wf.Error, wf.ErrorAt = st.Error, st.ErrorAt
			}
		}
	}
	return nil
}

// givenWitnesses names each of keys (verifier keys given off the PC) as
// the config names the witness with that very key, or by the key's own
// name when the config has no such witness (a key the config lacks or
// holds changed): a refusal or an error the service recorded belongs to
// the config's name.
func givenWitnesses(keys []string, configured []config.Witness) []config.Witness {
	out := make([]config.Witness, 0, len(keys))
	for _, key := range keys {
		w := config.Witness{Name: key, Key: key}
		if k, err := audit.ParseWitnessKey(key); err == nil {
			w.Name = k.Name
		}
		for _, c := range configured {
			if c.Key == key {
				w.Name = c.Name
			}
		}
		out = append(out, w)
	}
	return out
}

// WitnessReview is one configured witness in a review.
type WitnessReview struct {
	Name    string `json:"name"`
	Key     string `json:"key"`
	KeyName string `json:"key_name"`
	KeyHash string `json:"key_hash"`
	// Cosignatures counts its verified cosignatures signed in the period.
	Cosignatures int `json:"cosignatures_in_period"`
	// Largest is the largest checkpoint it cosigned in the period; Latest
	// the largest it ever cosigned.
	Largest *Cosigned `json:"largest_in_period,omitempty"`
	Latest  *Cosigned `json:"latest,omitempty"`
	Error   string    `json:"error"`
	// ErrorAt is when Error happened; nil without an error.
	ErrorAt *time.Time `json:"error_at,omitempty"`
	// Refusal is its refusal still waiting for an acknowledgement.
	Refusal *PendingRefusal `json:"pending_refusal,omitempty"`
	// Behind says it has not cosigned what the log held WitnessLag before
	// the end of the period; nil when it has.
	Behind *WitnessBehind `json:"behind,omitempty"`
}

// Cosigned is a checkpoint size and when a witness signed it.
type Cosigned struct {
	Size   int64     `json:"size"`
	Signed time.Time `json:"signed"`
}

// WitnessBehind is a witness that has not cosigned what the log held at
// Due: Entries entries, of which its verified cosignatures up to the end
// of the period cover Covered.
type WitnessBehind struct {
	Due     time.Time `json:"due"`
	Entries int64     `json:"entries"`
	Covered int64     `json:"covered"`
}

// PendingRefusal is a witness.refused entry no witness.acknowledged entry
// answers yet.
type PendingRefusal struct {
	Witness     string    `json:"witness"`
	Why         string    `json:"why"`
	Since       time.Time `json:"since"`
	WitnessSize int64     `json:"witness_size"`
	LogSize     int64     `json:"log_size"`
	Entry       int64     `json:"entry"`
}

// WitnessedCheckpoint is the latest checkpoint a quorum of the configured
// witnesses verified-cosigned: the log up to Covers is as they saw it.
type WitnessedCheckpoint struct {
	Size int64 `json:"size"`
	// Covers is the time of the newest entry it covers.
	Covers time.Time `json:"covers_until"`
	// At is when the quorum was reached: the latest of the signatures
	// that make it.
	At time.Time `json:"witnessed_at"`
	By []string  `json:"witnessed_by"`
}

// witnessReview fills the witness part of a review for period p ending at
// end (the period's end, or the making of the report when earlier).
func witnessReview(f *Facts, p Period, end time.Time, a *AuditReview) {
	a.WitnessQuorum = f.WitnessQuorum
	a.WitnessKeysGiven = f.WitnessKeysGiven
	a.Witnesses = []WitnessReview{}
	a.CosignaturesRejected = f.CosignaturesRejected
	a.CosignaturesUnchecked = f.CosignaturesUnchecked
	a.PendingRefusals = pendingRefusals(f.Entries, f.Now)
	a.LatestWitnessed = latestWitnessed(f, f.Now)
	due := end.Add(-WitnessLag)
	var dueSize int64
	for _, e := range f.Entries {
		if e.Time.Before(due) {
			dueSize = e.Seq + 1
		}
	}
	for _, w := range f.Witnesses {
		wr := WitnessReview{Name: w.Name, Key: w.Key, KeyName: w.KeyName, KeyHash: w.KeyHash, Error: w.Error, ErrorAt: ptr(w.ErrorAt)}
		var covered int64
		for _, c := range w.Cosigned {
			if !c.Signed.After(f.Now) {
				wr.Latest = &Cosigned{Size: c.Size, Signed: c.Signed}
			}
			if c.Signed.Before(end) {
				covered = c.Size
			}
			if p.contains(c.Signed) {
				wr.Cosignatures++
				wr.Largest = &Cosigned{Size: c.Size, Signed: c.Signed}
			}
		}
		if covered < dueSize {
			wr.Behind = &WitnessBehind{Due: due.UTC(), Entries: dueSize, Covered: covered}
		}
		for i, r := range a.PendingRefusals {
			if r.Witness == w.Name {
				wr.Refusal = &a.PendingRefusals[i]
			}
		}
		a.Witnesses = append(a.Witnesses, wr)
	}
	a.Witnessed = len(witnessedSizes(f, func(c CosignFact) bool { return p.contains(c.Signed) }))
}

// witnessedSizes returns, for each checkpoint size that at least the
// quorum of configured witnesses cosigned with a cosignature ok accepts,
// the signatures that make it, one per witness.
func witnessedSizes(f *Facts, ok func(CosignFact) bool) map[int64][]witnessSig {
	by := map[int64][]witnessSig{}
	for _, w := range f.Witnesses {
		for _, c := range w.Cosigned {
			if ok(c) {
				by[c.Size] = append(by[c.Size], witnessSig{name: w.Name, signed: c.Signed})
			}
		}
	}
	for size, sigs := range by {
		if len(sigs) < f.WitnessQuorum {
			delete(by, size)
		}
	}
	return by
}

type witnessSig struct {
	name   string
	signed time.Time
}

// latestWitnessed is the largest checkpoint a quorum cosigned up to now;
// nil when none is.
func latestWitnessed(f *Facts, now time.Time) *WitnessedCheckpoint {
	var best *WitnessedCheckpoint
	for size, sigs := range witnessedSizes(f, func(c CosignFact) bool { return !c.Signed.After(now) }) {
		if best != nil && size < best.Size {
			continue
		}
		// The quorum is reached with the quorum-th signature in time.
		sort.Slice(sigs, func(i, j int) bool { return sigs[i].signed.Before(sigs[j].signed) })
		wc := &WitnessedCheckpoint{Size: size, At: sigs[f.WitnessQuorum-1].signed.UTC(), By: []string{}}
		for _, s := range sigs {
			wc.By = append(wc.By, s.name)
		}
		sort.Strings(wc.By)
		if size-1 < int64(len(f.Entries)) {
			wc.Covers = f.Entries[size-1].Time.UTC()
		}
		best = wc
	}
	return best
}

// pendingRefusals reads from the log the refusals still waiting for an
// acknowledgement at now: per witness the latest witness.refused entry,
// unless a witness.acknowledged entry names it.
func pendingRefusals(entries []audit.Entry, now time.Time) []PendingRefusal {
	latest := map[string]PendingRefusal{}
	for _, e := range entries {
		if e.Time.After(now) {
			break
		}
		switch e.Kind {
		case audit.WitnessRefused:
			latest[val(e, "witness")] = PendingRefusal{Witness: val(e, "witness"), Why: val(e, "why"), Since: e.Time.UTC(),
				WitnessSize: num(e, "witness_size"), LogSize: num(e, "log_size"), Entry: e.Seq}
		case audit.WitnessAcknowledged:
			w := val(e, "witness")
			if r, ok := latest[w]; ok && r.Entry == num(e, "refusal") {
				delete(latest, w)
			}
		}
	}
	out := make([]PendingRefusal, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Witness < out[j].Witness })
	return out
}

// witnessTable is the per-witness table of the review.
func witnessTable(a AuditReview, tr printer) table {
	t := table{Caption: tr.t("witness.table", a.WitnessQuorum), Head: []string{tr.t("col.witness"), tr.t("col.witnesskey"), tr.t("col.cosigned"),
		tr.t("col.largest"), tr.t("col.latest"), tr.t("col.state")}, Right: []bool{false, false, true}, Empty: tr.t("witness.none")}
	for _, w := range a.Witnesses {
		key := tr.t("witness.badkey")
		if w.KeyHash != "" {
			key = w.KeyName + "+" + w.KeyHash
		}
		state := tr.t("witness.ok")
		switch {
		case w.Refusal != nil:
			// The finding says why; the table stays narrow enough to read.
			state = tr.t("witness.refusing", tr.time(w.Refusal.Since))
		case w.Error != "":
			state = tr.t("witness.error", clipRunes(w.Error, 60), tr.timep(w.ErrorAt))
		}
		t.Rows = append(t.Rows, []string{w.Name, key, tr.num(int64(w.Cosignatures)), cosignedText(w.Largest, tr), cosignedText(w.Latest, tr), state})
	}
	return t
}

func cosignedText(c *Cosigned, tr printer) string {
	if c == nil {
		return "—"
	}
	return tr.t("witness.cosigned", c.Size, tr.time(c.Signed))
}

// witnessedText says which checkpoint the witnesses last vouched for.
func witnessedText(w *WitnessedCheckpoint, tr printer) string {
	if w == nil {
		return tr.t("audit.witnessed.none")
	}
	return tr.t("audit.witnessed.latest", w.Size, tr.time(w.Covers), joinList(w.By), tr.time(w.At))
}

// clipRunes shortens s to n runes for a table cell; the JSON keeps it whole.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
