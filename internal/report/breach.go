package report

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Breach is the fact sheet for a breach notification (GDPR Art. 33): what
// personal data the PC holds now, which keys are on it, and what the audit
// log shows since a moment. It states facts, never advice. Its JSON form is
// described by schema/breach.schema.json.
type Breach struct {
	Meta     Meta           `json:"meta"`
	Bookings *BreachBooking `json:"bookings"`
	Traffic  BreachTraffic  `json:"traffic"`
	Keys     []KeyFact      `json:"keys"`
	Log      BreachLog      `json:"audit_log"`
	// Unknown names what only people can add; the sheet leaves room.
	Unknown []string `json:"to_be_completed_by_people"`
}

// BreachBooking is the register now.
type BreachBooking struct {
	Count      int        `json:"count"`
	Open       int        `json:"open"`
	WithPatron int        `json:"with_patron_card_hmac"`
	Patrons    int        `json:"distinct_patron_cards"`
	From       *time.Time `json:"first_start,omitempty"`
	To         *time.Time `json:"last_start,omitempty"`
}

// BreachTraffic is the sealed traffic now.
type BreachTraffic struct {
	Segments   int          `json:"segments"`
	Bytes      int64        `json:"bytes"`
	Records    int64        `json:"records"`
	Cases      []StoredCase `json:"cases"`
	Recipients []string     `json:"recipients"`
	// Readable is false: the PC holds only the recipients' public keys.
	Readable bool `json:"readable_on_pc"`
}

// KeyFact is one key carrel keeps on the PC, or the lack of one.
type KeyFact struct {
	Key         string `json:"key"` // audit-signing, patron-hmac, traffic-identity
	File        string `json:"file"`
	Present     bool   `json:"present"`
	Fingerprint string `json:"fingerprint"`
	Allows      string `json:"allows"`
}

// BreachLog is what the audit log shows since the given moment.
type BreachLog struct {
	Verification
	Entries       int              `json:"entries_since"`
	Kinds         []Count          `json:"kinds"`
	ConfigChanges int              `json:"configs_accepted"`
	Rejected      []RejectedConfig `json:"configs_rejected"`
	API           []Count          `json:"api_refusals"`
	Exports       []ExportReview   `json:"exports"`
	KeyEvents     []KeyEvent       `json:"key_events"`
	Unclean       []UncleanStop    `json:"unclean_stops"`
	Starts        int              `json:"service_starts"`
	Captures      int              `json:"capture_starts"`
	HoldsPlaced   int              `json:"holds_placed"`
	HoldsReleased int              `json:"holds_released"`
	PatronLookups int              `json:"patron_lookups"`
	// Witnessed is the latest checkpoint a quorum of the configured
	// witnesses verified-cosigned (witness.go): the log up to it is as
	// they saw it, whatever happened on the PC since. Nil when none is.
	Witnessed *WitnessedCheckpoint `json:"latest_witnessed,omitempty"`
	// PendingRefusals are witness refusals no one has acknowledged.
	PendingRefusals []PendingRefusal `json:"pending_witness_refusals"`
}

// KeyEvent is a key.created entry.
type KeyEvent struct {
	At          time.Time `json:"at"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
}

// Files of keys in the data folder (the daemon's and the audit log's names).
const patronKeyFile = "patron.key"

// BuildBreach makes the breach fact sheet for what happened since since.
func BuildBreach(f *Facts, since time.Time, lang string, loc *time.Location) *Breach {
	tr := newPrinter(lang, loc)
	b := &Breach{Meta: meta(f, "breach", tr)}
	s := since.UTC()
	b.Meta.Since = &s
	if bs := f.Bookings; bs != nil {
		b.Bookings = &BreachBooking{Count: bs.Bookings, Open: bs.Open, WithPatron: bs.WithPatron, Patrons: bs.Patrons,
			From: ptr(bs.FirstStart), To: ptr(bs.LastStart)}
	}
	b.Traffic = BreachTraffic{Cases: []StoredCase{}, Recipients: append([]string{}, f.Config.Capture.Recipients...)}
	for _, c := range traffic(f, Period{}).Stored {
		if c.Segments == 0 {
			continue
		}
		b.Traffic.Segments += c.Segments
		b.Traffic.Bytes += c.Bytes
		b.Traffic.Records += c.Records
		b.Traffic.Cases = append(b.Traffic.Cases, c)
	}

	fps := map[string]string{}
	p := Period{From: since, To: f.Now.Add(time.Nanosecond)}
	b.Log = BreachLog{Verification: f.Verify, Rejected: []RejectedConfig{}, API: []Count{}, Exports: exports(f, p),
		KeyEvents: []KeyEvent{}, Unclean: []UncleanStop{}}
	kinds := map[string]int{}
	for _, e := range f.Entries {
		if e.Kind == audit.KeyCreated {
			fps[val(e, "key")] = val(e, "fingerprint")
		}
		if !p.contains(e.Time) {
			continue
		}
		b.Log.Entries++
		kinds[string(e.Kind)]++
		switch e.Kind {
		case audit.KeyCreated:
			b.Log.KeyEvents = append(b.Log.KeyEvents, KeyEvent{At: e.Time.UTC(), Key: val(e, "key"), Fingerprint: val(e, "fingerprint")})
		case audit.CaptureStart:
			b.Log.Captures++
		case audit.HoldPlaced:
			b.Log.HoldsPlaced++
		case audit.HoldReleased:
			b.Log.HoldsReleased++
		}
	}
	b.Log.Kinds = counts(kinds)
	cfg, api, svc := configAPIService(f, p, f.Now)
	b.Log.ConfigChanges, b.Log.Rejected, b.Log.API, b.Log.PatronLookups = cfg.Accepted, cfg.Rejected, api, cfg.PatronLookups
	b.Log.Unclean, b.Log.Starts = svc.Unclean, svc.Starts
	b.Log.Witnessed = latestWitnessed(f, f.Now)
	b.Log.PendingRefusals = pendingRefusals(f.Entries, f.Now)

	dir := f.Config.Storage.DataDir
	b.Keys = []KeyFact{
		{Key: "audit-signing", File: filepath.Join(dir, audit.KeyFile), Present: exists(filepath.Join(dir, audit.KeyFile)),
			Fingerprint: fps["audit-signing"], Allows: tr.t("key.audit-signing")},
		{Key: "patron-hmac", File: filepath.Join(dir, patronKeyFile), Present: exists(filepath.Join(dir, patronKeyFile)),
			Fingerprint: fps["patron-hmac"], Allows: tr.t("key.patron-hmac")},
		{Key: "traffic-identity", File: "", Present: false, Allows: tr.t("key.traffic-identity")},
	}
	b.Unknown = []string{tr.t("blank.what"), tr.t("blank.discovered"), tr.t("blank.affected"), tr.t("blank.consequences"),
		tr.t("blank.measures"), tr.t("blank.notified"), tr.t("blank.informed")}
	return b
}

// exists says whether a key file is there. It reads nothing of it.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

func (b *Breach) document(tr printer) *document {
	d := &document{Lang: tr.lang, Title: b.Meta.Title, Subtitle: tr.t("breach.subtitle"), Meta: metaPairs(b.Meta, tr), Footer: footer(b.Meta, tr)}
	held := section{Heading: tr.t("h.breach.held")}
	if bk := b.Bookings; bk != nil {
		held.Facts = append(held.Facts,
			pair{tr.t("breach.bookings"), tr.t("breach.bookings.value", bk.Count, bk.Open)},
			pair{tr.t("breach.cards"), tr.t("breach.cards.value", bk.WithPatron, bk.Patrons)},
			pair{tr.t("breach.range"), tr.timep(bk.From) + " – " + tr.timep(bk.To)})
	} else {
		held.Facts = append(held.Facts, pair{tr.t("breach.bookings"), tr.t("retention.noregister")})
	}
	t := b.Traffic
	held.Facts = append(held.Facts, pair{tr.t("breach.traffic"), tr.t("breach.traffic.value", t.Segments, tr.bytes(t.Bytes), t.Records)})
	ct := table{Caption: tr.t("breach.traffic.cases"), Head: []string{tr.t("col.case"), tr.t("col.segments"), tr.t("col.bytes"), tr.t("col.records"),
		tr.t("col.from"), tr.t("col.to"), tr.t("col.held")}, Right: []bool{false, true, true, true, false, false, true}, Empty: tr.t("none")}
	for _, c := range t.Cases {
		ct.Rows = append(ct.Rows, []string{c.Case, tr.num(int64(c.Segments)), tr.bytes(c.Bytes), tr.num(c.Records), tr.timep(c.From), tr.timep(c.To), tr.num(int64(c.Held))})
	}
	held.Tables = []table{ct}
	held.Paras = []string{tr.t("breach.sealed", len(t.Recipients)), tr.t("breach.audit")}
	d.Sections = append(d.Sections, held)

	keys := section{Heading: tr.t("h.breach.keys")}
	for _, k := range b.Keys {
		keys.Facts = append(keys.Facts, pair{tr.t("keyname." + k.Key),
			tr.t("key.value", tr.yesno(k.Present), orDash(k.File), orDash(short(k.Fingerprint)), k.Allows)})
	}
	d.Sections = append(d.Sections, keys)

	l := b.Log
	logS := section{Heading: tr.t("h.breach.log", tr.time(*b.Meta.Since)), Facts: []pair{
		{tr.t("audit.verified"), verdict(l.Verification, tr)},
		{tr.t("breach.untampered"), untampered(l, b.Meta.AuditSize, tr)},
		{tr.t("breach.log.entries"), tr.num(int64(l.Entries))},
		{tr.t("service.starts"), tr.num(int64(l.Starts))},
		{tr.t("service.unclean"), tr.num(int64(len(l.Unclean)))},
		{tr.t("config.accepted"), tr.num(int64(l.ConfigChanges))},
		{tr.t("config.rejected"), tr.num(int64(len(l.Rejected)))},
		{tr.t("breach.log.captures"), tr.num(int64(l.Captures))},
		{tr.t("traffic.holds"), tr.t("traffic.holds.value", l.HoldsPlaced, l.HoldsReleased)},
		{tr.t("breach.log.exports"), tr.num(int64(len(l.Exports)))},
		{tr.t("breach.log.lookups"), tr.num(int64(l.PatronLookups))},
	}}
	rejT := table{Caption: tr.t("config.rejectedlist"), Head: []string{tr.t("col.at"), tr.t("col.problems")}, Empty: tr.t("none")}
	for _, c := range l.Rejected {
		rejT.Rows = append(rejT.Rows, []string{tr.time(c.At), c.Problems})
	}
	apiT := table{Caption: tr.t("api.refusals"), Head: []string{tr.t("col.why"), tr.t("col.count")}, Right: []bool{false, true}, Empty: tr.t("none")}
	for _, c := range l.API {
		apiT.Rows = append(apiT.Rows, []string{c.What, tr.num(int64(c.Count))})
	}
	exT := table{Caption: tr.t("breach.log.exportlist"), Head: []string{tr.t("col.at"), tr.t("col.order"), tr.t("col.window"), tr.t("col.result")}, Empty: tr.t("none")}
	for _, e := range l.Exports {
		order := e.OrderRef
		if order == "" {
			order = "sha256 " + short(e.OrderSHA256)
		}
		exT.Rows = append(exT.Rows, []string{tr.time(e.At), order, tr.time(e.From) + " – " + tr.time(e.To), exportResult(e, tr)})
	}
	keyT := table{Caption: tr.t("breach.log.keys"), Head: []string{tr.t("col.at"), tr.t("col.key"), tr.t("col.fingerprint")}, Empty: tr.t("none")}
	for _, k := range l.KeyEvents {
		keyT.Rows = append(keyT.Rows, []string{tr.time(k.At), tr.tOr("keyname.", k.Key), short(k.Fingerprint)})
	}
	unT := uncleanTable(l.Unclean, tr)
	kindT := table{Caption: tr.t("audit.kinds"), Head: []string{tr.t("col.kind"), tr.t("col.count")}, Right: []bool{false, true}, Empty: tr.t("none")}
	for _, k := range l.Kinds {
		kindT.Rows = append(kindT.Rows, []string{k.What, tr.num(int64(k.Count))})
	}
	for _, p := range l.PendingRefusals {
		logS.Paras = append(logS.Paras, tr.t("breach.refusal", p.Witness, tr.tOr("refusal.", p.Why), tr.time(p.Since), p.LogSize))
	}
	logS.Tables = []table{rejT, apiT, exT, keyT, unT, kindT}
	d.Sections = append(d.Sections, logS)

	d.Sections = append(d.Sections, section{Heading: tr.t("h.breach.people"), Paras: []string{tr.t("breach.people")}, Blanks: b.Unknown})
	return d
}

// untampered says up to where something kept off the PC vouches for the
// audit log: the larger of the checkpoint a quorum of witnesses cosigned
// and the trusted checkpoint given to the report. Entries after it rest on
// the PC's own key, which whoever broke in may hold.
func untampered(l BreachLog, total int64, tr printer) string {
	w, t := l.Witnessed, l.Trusted
	switch {
	case w != nil && (t == nil || w.Size >= t.Size):
		return tr.t("breach.untampered.witnessed", w.Size, tr.time(w.Covers), joinList(w.By), tr.time(w.At), max(total-w.Size, 0))
	case t != nil:
		return tr.t("breach.untampered.trusted", t.Size, tr.time(t.Covers), max(total-t.Size, 0))
	}
	return tr.t("breach.untampered.none")
}
