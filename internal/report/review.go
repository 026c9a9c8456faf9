package report

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// The retention schedule the service keeps (internal/daemon and
// internal/misuse purge at start and every hour while running), and the
// tolerance the review allows before it calls a stretch without a run a
// gap. A run is due every hour; the ticker drifts by the time a run and the
// service's other chores take (seconds), a reload or a slow disk can delay
// one by a few more, and a restart runs one at start. A quarter of an hour
// over the hour covers all of that; anything longer means a run was missed.
const (
	RetentionSchedule  = time.Hour
	RetentionTolerance = 15 * time.Minute
	// shortStop: a gap that only spans a clean stop of the service shorter
	// than this is counted, not listed: PCs switched off overnight would
	// otherwise fill the review with a line per night. A booking is kept at
	// most this long past its deletion time, which is below the day
	// granularity retention is set in.
	shortStop = 24 * time.Hour
	// HoldReviewAge is the age at which an open legal hold is a finding:
	// the need for held traffic must be reviewed (frame point 6) at least
	// twice a year.
	HoldReviewAge = 180 * 24 * time.Hour
	// MaxBookingRetention is the booking retention the product is built
	// around (28 days, G6); more is a finding.
	MaxBookingRetention = config.DefaultBookingRetention
)

// Period is the half-open interval [From, To) a review covers.
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (p Period) contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// Review is the yearly review. Its JSON form is described by
// schema/review.schema.json.
type Review struct {
	Meta      Meta            `json:"meta"`
	Retention RetentionReview `json:"retention"`
	Cases     []CaseReview    `json:"cases"`
	Capture   CaptureReview   `json:"capture"`
	Traffic   TrafficReview   `json:"traffic"`
	Exports   []ExportReview  `json:"exports"`
	Config    ConfigReview    `json:"config"`
	API       []Count         `json:"api_refusals"`
	Service   ServiceReview   `json:"service"`
	Audit     AuditReview     `json:"audit"`
	Findings  []Finding       `json:"findings"`
}

// Meta says what a report is, for which PC, period and moment.
type Meta struct {
	Report    string     `json:"report"` // review, processing or breach
	Lang      string     `json:"lang"`
	Title     string     `json:"title"`
	PC        string     `json:"pc"`
	Library   Library    `json:"library"`
	Made      time.Time  `json:"made"`
	Period    *Period    `json:"period,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	Config    string     `json:"config_sha256"`
	Version   string     `json:"carrel_version"`
	TimeZone  string     `json:"time_zone"`
	DataDir   string     `json:"data_dir"`
	AuditSize int64      `json:"audit_entries"`
}

// Library is the [library] table of the config.
type Library struct {
	Name        string `json:"name"`
	Responsible string `json:"responsible"`
	Contact     string `json:"contact"`
	Rules       string `json:"rules"`
}

// Count is a number of entries with one value.
type Count struct {
	What  string `json:"what"`
	Count int    `json:"count"`
}

// RetentionReview is what the audit log shows of retention (G6).
type RetentionReview struct {
	BookingRetentionSeconds int64 `json:"booking_retention_seconds"`
	TrafficRetentionSeconds int64 `json:"traffic_retention_seconds"`
	ScheduleSeconds         int64 `json:"schedule_seconds"`
	ToleranceSeconds        int64 `json:"tolerance_seconds"`
	Runs                    int   `json:"runs"`
	DeletingRuns            int   `json:"deleting_runs"`
	Deleted                 int64 `json:"bookings_deleted"`
	// MaxEffectiveSeconds is the longest retention any run applied (run
	// time minus its cutoff).
	MaxEffectiveSeconds int64      `json:"max_effective_retention_seconds"`
	Months              []MonthRun `json:"months"`
	Gaps                []Gap      `json:"gaps"`
	// ShortStops counts gaps that only span a clean stop shorter than a
	// day; LongestShortStopSeconds is the longest of them.
	ShortStops              int          `json:"short_stops"`
	LongestShortStopSeconds int64        `json:"longest_short_stop_seconds"`
	Traffic                 []TrafficRun `json:"traffic_runs"`
	// Stored is what the register holds now.
	Stored *StoredBookings `json:"stored_bookings"`
	// OverdueSeconds is how long the oldest stored ended booking is past
	// its deletion time; 0 when none is.
	OverdueSeconds int64 `json:"overdue_seconds"`
}

// MonthRun sums one calendar month's booking retention runs.
type MonthRun struct {
	Month        string     `json:"month"` // 2025-03, in the report's time zone
	Runs         int        `json:"runs"`
	DeletingRuns int        `json:"deleting_runs"`
	Deleted      int64      `json:"bookings_deleted"`
	From         *time.Time `json:"deleted_from,omitempty"`
	To           *time.Time `json:"deleted_to,omitempty"`
}

// Gap is a stretch longer than the schedule allows without a booking
// retention run.
type Gap struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds int64     `json:"seconds"`
	// Cause: service-stopped (a clean stop lies in it), unclean-stop (the
	// service died), or no-run (the service ran but recorded no run: a
	// hang or clock trouble).
	Cause string `json:"cause"`
	// Open says the gap lasts until the report was made.
	Open bool `json:"open"`
}

// TrafficRun is one traffic retention run that deleted segments.
type TrafficRun struct {
	At       time.Time  `json:"at"`
	Segments int64      `json:"segments"`
	Bytes    int64      `json:"bytes"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
}

// StoredBookings is the register's summary now.
type StoredBookings struct {
	Count      int        `json:"count"`
	Open       int        `json:"open"`
	WithPatron int        `json:"with_patron_card"`
	FirstStart *time.Time `json:"first_start,omitempty"`
	LastStart  *time.Time `json:"last_start,omitempty"`
	OldestEnd  *time.Time `json:"oldest_end,omitempty"`
}

// CaseReview is one misuse case as config and audit log know it.
type CaseReview struct {
	ID string `json:"id"`
	// Verdict is the service's latest verdict in the period: accepted,
	// refused, or unseen (declared in the config, never judged by a
	// running service).
	Verdict        string     `json:"verdict"`
	InConfig       bool       `json:"in_config"`
	Mode           string     `json:"mode"`
	Start          *time.Time `json:"start,omitempty"`
	End            *time.Time `json:"end,omitempty"`
	Days           float64    `json:"days"`
	PCs            []string   `json:"pcs"`
	DeclaredBy     string     `json:"declared_by"`
	ApprovedBy     string     `json:"approved_by"`
	NoticePostedAt *time.Time `json:"notice_posted_at,omitempty"`
	Refusals       []string   `json:"refusals"`
	CaptureSeconds int64      `json:"capture_seconds"`
}

// CaptureReview lists the capture runs.
type CaptureReview struct {
	Runs         []CaptureRun `json:"runs"`
	TotalSeconds int64        `json:"total_seconds"`
	Errors       int          `json:"errors"`
	Quota        int          `json:"quota_reached"`
}

// CaptureRun is one capture from capture.start to its stop.
type CaptureRun struct {
	Case      string     `json:"case"`
	Mode      string     `json:"mode"`
	Interface string     `json:"interface"`
	Start     time.Time  `json:"start"`
	Stop      *time.Time `json:"stop,omitempty"`
	// Why the capture stopped (case-ended, shutdown, quota, …); "running"
	// while it runs, "unclean-stop" when the service died meanwhile.
	Why     string `json:"why"`
	Packets int64  `json:"packets"`
	Drops   int64  `json:"drops"`
}

// TrafficReview is the sealed traffic of the period and of now.
type TrafficReview struct {
	Sealed         int64        `json:"segments_sealed"`
	SealedBytes    int64        `json:"bytes_sealed"`
	SealedRecords  int64        `json:"records_sealed"`
	Lost           int          `json:"segments_lost"`
	Deleted        int64        `json:"segments_deleted"`
	DeletedBytes   int64        `json:"bytes_deleted"`
	HoldsPlaced    int          `json:"holds_placed"`
	HoldsReleased  int          `json:"holds_released"`
	Stored         []StoredCase `json:"stored"`
	Holds          []OpenHold   `json:"open_holds"`
	StoreAvailable bool         `json:"store_exists"`
}

// StoredCase is one case's traffic still on the PC.
type StoredCase struct {
	Case     string     `json:"case"`
	Segments int        `json:"segments"`
	Bytes    int64      `json:"bytes"`
	Records  int64      `json:"records"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	Held     int        `json:"held_segments"`
	Deleted  int        `json:"deleted_segments"`
	// DeleteAfter is when retention may delete its unheld segments: the
	// case's end plus traffic retention; nil when the case's end is unknown.
	DeleteAfter *time.Time `json:"delete_after,omitempty"`
}

// OpenHold is a legal hold still in force.
type OpenHold struct {
	OrderRef    string    `json:"order_ref"`
	OrderSHA256 string    `json:"order_sha256"`
	Segments    int       `json:"segments"`
	Bytes       int64     `json:"bytes"`
	Placed      time.Time `json:"placed"`
	AgeSeconds  int64     `json:"age_seconds"`
}

// ExportReview is one court-order export.
type ExportReview struct {
	At          time.Time `json:"at"`
	OrderSHA256 string    `json:"order_sha256"`
	// OrderRef is known on the PC only while a legal hold under the order
	// exists; the court and requester are kept in the bundle, not here.
	OrderRef string    `json:"order_ref"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	PCs      int64     `json:"pcs"`
	Result   string    `json:"result"` // done, failed, unfinished
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
	Why      string    `json:"why"`
	// Cleaned is the outcome of removing the partial bundle an interrupted
	// export left (export.cleaned); empty when there was none.
	Cleaned string `json:"cleaned,omitempty"`
}

// ConfigReview counts config changes and staff look-ups.
type ConfigReview struct {
	Accepted int              `json:"accepted"`
	Rejected []RejectedConfig `json:"rejected"`
	// PatronLookups counts access-request look-ups of one patron card's
	// bookings (booking.patron-lookup), and PatronLookupsFound the bookings
	// they found.
	PatronLookups      int   `json:"patron_lookups"`
	PatronLookupsFound int64 `json:"patron_lookups_found"`
}

// RejectedConfig is one refused config file.
type RejectedConfig struct {
	At       time.Time `json:"at"`
	Problems string    `json:"problems"`
	Count    int64     `json:"count"`
}

// ServiceReview counts starts and stops.
type ServiceReview struct {
	Starts       int           `json:"starts"`
	Stops        []Count       `json:"clean_stops"`
	Unclean      []UncleanStop `json:"unclean_stops"`
	Interrupted  int64         `json:"bookings_interrupted"`
	RunningNow   bool          `json:"running_at_end"`
	UpSeconds    int64         `json:"up_seconds"`
	PeriodLength int64         `json:"period_seconds"`
}

// UncleanStop is a run of the service that ended without a clean stop.
type UncleanStop struct {
	Noticed   time.Time  `json:"noticed"`
	LastAlive *time.Time `json:"last_alive,omitempty"`
	// Boot says whether the PC itself restarted meanwhile: same, changed
	// or unknown; empty when the entry does not say.
	Boot string `json:"boot,omitempty"`
}

// AuditReview is the state of the audit log.
type AuditReview struct {
	Verification
	InPeriod int     `json:"entries_in_period"`
	Kinds    []Count `json:"kinds"`
	// Witnessed counts the checkpoints witnessed in the period: each
	// cosigned, with a signature the witness dated in the period, by at
	// least WitnessQuorum of the configured witnesses, every cosignature
	// verified with the witness's key from the config and on a checkpoint
	// of this log (witness.go). The quorum is the config's
	// audit.witness_quorum: with 2, a checkpoint only one witness cosigned
	// is not counted, as `carrel audit verify` would not call it witnessed.
	Witnessed     int `json:"witnessed_checkpoints"`
	WitnessQuorum int `json:"witness_quorum"`
	// WitnessKeysGiven says the witness keys were given off the PC
	// (`--witness-key`), not read from the config.
	WitnessKeysGiven bool `json:"witness_keys_given,omitempty"`
	// LatestWitnessed is the largest checkpoint a quorum cosigned up to
	// the making of the review; nil when none is.
	LatestWitnessed *WitnessedCheckpoint `json:"latest_witnessed,omitempty"`
	Witnesses       []WitnessReview      `json:"witnesses"`
	// CosignaturesRejected are stored cosignatures that claim a configured
	// witness but do not count (a changed cosignature table);
	// CosignaturesUnchecked counts those by witnesses not configured.
	CosignaturesRejected  []RejectedCosignature `json:"cosignatures_rejected"`
	CosignaturesUnchecked int                   `json:"cosignatures_unchecked"`
	// WitnessRefusals are the witness.refused entries of the period: a
	// witness found the log is not an extension of what it cosigned.
	WitnessRefusals []Count `json:"witness_refusals"`
	// PendingRefusals are refusals no administrator acknowledged by the
	// making of the review, whenever they happened.
	PendingRefusals []PendingRefusal `json:"pending_refusals"`
}

// BuildReview makes the yearly review for period p from f. lang must be
// one of Languages.
func BuildReview(f *Facts, p Period, lang string, loc *time.Location) *Review {
	tr := newPrinter(lang, loc)
	r := &Review{Meta: meta(f, "review", tr)}
	r.Meta.Period = &p
	end := p.To
	if f.Now.Before(end) {
		end = f.Now
	}
	r.Retention = retention(f, p, end, loc)
	r.Cases = cases(f, p, end)
	r.Capture = captureRuns(f, p, end)
	for i := range r.Cases {
		for _, c := range r.Capture.Runs {
			if c.Case == r.Cases[i].ID {
				r.Cases[i].CaptureSeconds += clipSeconds(c.Start, c.Stop, p.From, end)
			}
		}
	}
	r.Traffic = traffic(f, p)
	r.Exports = exports(f, p)
	r.Config, r.API, r.Service = configAPIService(f, p, end)
	r.Audit = auditReview(f, p)
	witnessReview(f, p, end, &r.Audit)
	r.Findings = Findings(r, tr)
	return r
}

func meta(f *Facts, kind string, tr printer) Meta {
	c := f.Config
	m := Meta{Report: kind, Lang: tr.lang, Title: tr.t("title." + kind), PC: c.PC.ID,
		Library: Library{Name: c.Library.Name, Responsible: c.Library.Responsible, Contact: c.Library.Contact, Rules: c.Library.Rules},
		Made:    f.Now.UTC(), Config: hexDigest(c.SHA256[:]), Version: f.Version, TimeZone: tr.loc.String(),
		DataDir: c.Storage.DataDir, AuditSize: int64(len(f.Entries))}
	return m
}

func hexDigest(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// val, num and at read an entry's fields; a missing or malformed field
// reads as zero, which the log's verification reports on its own.
func val(e audit.Entry, key string) string { v, _ := e.Value(key); return v }

func num(e audit.Entry, key string) int64 {
	n, _ := strconv.ParseInt(val(e, key), 10, 64)
	return n
}

func at(e audit.Entry, key string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, val(e, key))
	return t
}

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func clipSeconds(start time.Time, stop *time.Time, from, to time.Time) int64 {
	end := to
	if stop != nil && stop.Before(end) {
		end = *stop
	}
	if start.Before(from) {
		start = from
	}
	if !end.After(start) {
		return 0
	}
	return int64(end.Sub(start) / time.Second)
}

func retention(f *Facts, p Period, end time.Time, loc *time.Location) RetentionReview {
	cfg := f.Config
	r := RetentionReview{BookingRetentionSeconds: int64(cfg.Booking.Retention.D() / time.Second),
		TrafficRetentionSeconds: int64(cfg.Capture.TrafficRetention.D() / time.Second),
		ScheduleSeconds:         int64(RetentionSchedule / time.Second), ToleranceSeconds: int64(RetentionTolerance / time.Second),
		Months: []MonthRun{}, Gaps: []Gap{}, Traffic: []TrafficRun{}}
	for m := time.Date(p.From.In(loc).Year(), p.From.In(loc).Month(), 1, 0, 0, 0, 0, loc); m.Before(end); m = m.AddDate(0, 1, 0) {
		r.Months = append(r.Months, MonthRun{Month: m.Format("2006-01")})
	}
	months := map[string]*MonthRun{}
	for i := range r.Months {
		months[r.Months[i].Month] = &r.Months[i]
	}
	var runs []time.Time
	for _, e := range f.Entries {
		switch e.Kind {
		case audit.BookingRetention:
			runs = append(runs, e.Time)
			if !p.contains(e.Time) {
				continue
			}
			r.Runs++
			n := num(e, "deleted")
			if eff := int64(e.Time.Sub(at(e, "cutoff")) / time.Second); eff > r.MaxEffectiveSeconds {
				r.MaxEffectiveSeconds = eff
			}
			m := months[e.Time.In(loc).Format("2006-01")]
			if m == nil {
				continue
			}
			m.Runs++
			if n > 0 {
				r.DeletingRuns++
				r.Deleted += n
				m.DeletingRuns++
				m.Deleted += n
				if from := at(e, "from"); !from.IsZero() && (m.From == nil || from.Before(*m.From)) {
					m.From = ptr(from)
				}
				if to := at(e, "to"); !to.IsZero() && (m.To == nil || to.After(*m.To)) {
					m.To = ptr(to)
				}
			}
		case audit.TrafficRetention:
			if p.contains(e.Time) {
				r.Traffic = append(r.Traffic, TrafficRun{At: e.Time.UTC(), Segments: num(e, "deleted"), Bytes: num(e, "bytes"),
					From: ptr(at(e, "from")), To: ptr(at(e, "to"))})
			}
		}
	}
	r.Gaps, r.ShortStops, r.LongestShortStopSeconds = gaps(f.Entries, runs, p.From, end, f.Now)
	if b := f.Bookings; b != nil {
		r.Stored = &StoredBookings{Count: b.Bookings, Open: b.Open, WithPatron: b.WithPatron,
			FirstStart: ptr(b.FirstStart), LastStart: ptr(b.LastStart), OldestEnd: ptr(b.OldestEnd)}
		if !b.OldestEnd.IsZero() {
			due := b.OldestEnd.Add(cfg.Booking.Retention.D())
			if over := f.Now.Sub(due); over > RetentionSchedule+RetentionTolerance {
				r.OverdueSeconds = int64(over / time.Second)
			}
		}
	}
	return r
}

// gaps finds the stretches of [from, end] longer than the schedule allows
// without a booking retention run. runs are the times of every run in the
// log, oldest first.
func gaps(entries []audit.Entry, runs []time.Time, from, end, now time.Time) (list []Gap, short int, longestShort int64) {
	list = []Gap{}
	if len(entries) == 0 || !end.After(from) {
		return list, 0, 0
	}
	// Nothing is due before the service first ran.
	if first := entries[0].Time; first.After(from) {
		from = first
	}
	prev := from
	for _, t := range runs {
		if !t.After(prev) {
			continue // before the period, or a clock that stepped back
		}
		if t.After(end) {
			break
		}
		if t.Sub(prev) > RetentionSchedule+RetentionTolerance {
			list = append(list, Gap{From: prev.UTC(), To: t.UTC(), Seconds: int64(t.Sub(prev) / time.Second)})
		}
		prev = t
	}
	if end.Sub(prev) > RetentionSchedule+RetentionTolerance {
		list = append(list, Gap{From: prev.UTC(), To: end.UTC(), Seconds: int64(end.Sub(prev) / time.Second), Open: !end.Before(now)})
	}
	kept := list[:0]
	for _, g := range list {
		g.Cause = gapCause(entries, g)
		if g.Cause == "service-stopped" && g.Seconds < int64(shortStop/time.Second) {
			short++
			longestShort = max(longestShort, g.Seconds)
			continue
		}
		kept = append(kept, g)
	}
	return kept, short, longestShort
}

// gapCause says why no run happened in g, from the service's own entries.
func gapCause(entries []audit.Entry, g Gap) string {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Time.After(g.From) })
	cause := "no-run"
	for ; i < len(entries) && !entries[i].Time.After(g.To); i++ {
		switch entries[i].Kind {
		case audit.ServiceUncleanStop:
			return "unclean-stop"
		case audit.ServiceStop:
			cause = "service-stopped"
		}
	}
	if cause == "no-run" && g.Open {
		// The service is not running now if its last entry of its own
		// lifecycle is a stop.
		for j := len(entries) - 1; j >= 0; j-- {
			switch entries[j].Kind {
			case audit.ServiceStop:
				return "service-stopped"
			case audit.ServiceStart:
				return cause
			}
		}
	}
	return cause
}

func cases(f *Facts, p Period, end time.Time) []CaseReview {
	byID := map[string]*CaseReview{}
	var order []string
	get := func(id string) *CaseReview {
		if c, ok := byID[id]; ok {
			return c
		}
		c := &CaseReview{ID: id, Verdict: "unseen", PCs: []string{}, Refusals: []string{}}
		byID[id] = c
		order = append(order, id)
		return c
	}
	for _, e := range f.Entries {
		if !e.Time.Before(p.To) {
			break
		}
		switch e.Kind {
		case audit.CaseAccepted:
			start, stop := at(e, "start"), at(e, "end")
			if !p.contains(e.Time) && !(start.Before(p.To) && stop.After(p.From)) {
				continue
			}
			c := get(val(e, "case"))
			c.Verdict, c.Mode, c.Start, c.End = "accepted", val(e, "mode"), ptr(start), ptr(stop)
			c.NoticePostedAt = ptr(at(e, "notice_posted_at"))
		case audit.CaseRejected:
			if !p.contains(e.Time) {
				continue
			}
			c := get(val(e, "case"))
			c.Verdict = "refused"
			if why := val(e, "why"); !slices.Contains(c.Refusals, why) {
				c.Refusals = append(c.Refusals, why)
			}
		}
	}
	for _, k := range f.Config.Cases {
		id := k.Name()
		c, seen := byID[id]
		if !seen {
			if !k.Start.IsZero() && !k.End.IsZero() && !(k.Start.Before(p.To) && k.EffectiveEnd().After(p.From)) {
				continue
			}
			c = get(id)
		}
		c.InConfig = true
		c.PCs = append([]string{}, k.PCs...)
		c.DeclaredBy, c.ApprovedBy = k.DeclaredBy, k.ApprovedBy
		if c.Mode == "" {
			c.Mode = k.Mode
		}
		if c.Start == nil {
			c.Start = ptr(k.Start)
		}
		if c.End == nil {
			c.End = ptr(k.EffectiveEnd())
		}
		if c.NoticePostedAt == nil {
			c.NoticePostedAt = ptr(k.NoticePostedAt)
		}
	}
	out := make([]CaseReview, 0, len(order))
	for _, id := range order {
		c := byID[id]
		if c.Start != nil && c.End != nil {
			c.Days = float64(c.End.Sub(*c.Start)/time.Minute) / (24 * 60)
		}
		out = append(out, *c)
	}
	sort.SliceStable(out, func(i, j int) bool { return caseStart(out[i]).Before(caseStart(out[j])) })
	return out
}

func caseStart(c CaseReview) time.Time {
	if c.Start == nil {
		return time.Time{}
	}
	return *c.Start
}

func captureRuns(f *Facts, p Period, end time.Time) CaptureReview {
	cr := CaptureReview{Runs: []CaptureRun{}}
	var cur *CaptureRun
	closeRun := func(t time.Time, why string, e *audit.Entry) {
		if cur == nil {
			return
		}
		cur.Stop, cur.Why = ptr(t), why
		if e != nil {
			cur.Packets, cur.Drops = num(*e, "packets"), num(*e, "drops")
		}
		if cur.Stop == nil || cur.Stop.After(p.From) {
			if cur.Start.Before(p.To) {
				cr.Runs = append(cr.Runs, *cur)
			}
		}
		cur = nil
	}
	for i, e := range f.Entries {
		switch e.Kind {
		case audit.CaptureStart:
			closeRun(e.Time, "restarted", nil)
			cur = &CaptureRun{Case: val(e, "case"), Mode: val(e, "mode"), Interface: val(e, "interface"), Start: e.Time.UTC()}
		case audit.CaptureStop:
			closeRun(e.Time, val(e, "why"), &f.Entries[i])
		case audit.ServiceUncleanStop:
			closeRun(at(e, "last_alive"), "unclean-stop", nil)
		case audit.CaptureError:
			if p.contains(e.Time) {
				cr.Errors++
			}
		case audit.QuotaReached:
			if p.contains(e.Time) {
				cr.Quota++
			}
		}
	}
	if cur != nil {
		cur.Why = "running"
		if cur.Start.Before(p.To) {
			cr.Runs = append(cr.Runs, *cur)
		}
	}
	for _, c := range cr.Runs {
		cr.TotalSeconds += clipSeconds(c.Start, c.Stop, p.From, end)
	}
	return cr
}

func traffic(f *Facts, p Period) TrafficReview {
	t := TrafficReview{Stored: []StoredCase{}, Holds: []OpenHold{}}
	for _, e := range f.Entries {
		if !p.contains(e.Time) {
			continue
		}
		switch e.Kind {
		case audit.SegmentSealed:
			t.Sealed++
			t.SealedBytes += num(e, "size")
			t.SealedRecords += num(e, "records")
		case audit.SegmentLost:
			t.Lost++
		case audit.TrafficRetention:
			t.Deleted += num(e, "deleted")
			t.DeletedBytes += num(e, "bytes")
		case audit.HoldPlaced:
			t.HoldsPlaced++
		case audit.HoldReleased:
			t.HoldsReleased++
		}
	}
	s := f.Traffic
	if s == nil {
		return t
	}
	t.StoreAvailable = true
	for _, c := range s.Cases {
		sc := StoredCase{Case: c.Case, Segments: c.Sealed, Bytes: c.SealedBytes, Records: c.SealedRecords,
			From: ptr(c.From), To: ptr(c.To), Held: c.HeldSegments, Deleted: c.Deleted}
		if end, ok := caseEnd(f, c.Case); ok {
			sc.DeleteAfter = ptr(end.Add(f.Config.Capture.TrafficRetention.D()))
		}
		t.Stored = append(t.Stored, sc)
	}
	for _, h := range s.Holds {
		t.Holds = append(t.Holds, OpenHold{OrderRef: h.OrderRef, OrderSHA256: h.OrderSHA256, Segments: h.Segments,
			Bytes: h.Bytes, Placed: h.PlacedAt.UTC(), AgeSeconds: int64(f.Now.Sub(h.PlacedAt) / time.Second)})
	}
	return t
}

// caseEnd is when a case ended, as the service's retention judges it: the
// config's end, else the last accepted verdict's end in the log.
func caseEnd(f *Facts, id string) (time.Time, bool) {
	for _, k := range f.Config.Cases {
		if k.ID == id && !k.EffectiveEnd().IsZero() {
			return k.EffectiveEnd(), true
		}
	}
	var end time.Time
	for _, e := range f.Entries {
		if e.Kind == audit.CaseAccepted && val(e, "case") == id {
			end = at(e, "end")
		}
	}
	return end, !end.IsZero()
}

func exports(f *Facts, p Period) []ExportReview {
	refs := map[string]string{}
	if f.Traffic != nil {
		for _, h := range f.Traffic.Holds {
			refs[h.OrderSHA256] = h.OrderRef
		}
	}
	out := []ExportReview{}
	open := map[string]int{} // order digest -> index of its unfinished export
	for _, e := range f.Entries {
		if !p.contains(e.Time) {
			continue
		}
		sum := val(e, "order_sha256")
		switch e.Kind {
		case audit.ExportStart:
			open[sum] = len(out)
			out = append(out, ExportReview{At: e.Time.UTC(), OrderSHA256: sum, OrderRef: refs[sum], From: at(e, "from").UTC(),
				To: at(e, "to").UTC(), PCs: num(e, "pcs"), Result: "unfinished"})
		case audit.ExportCleaned:
			// A partial bundle left by an interrupted export was removed:
			// note it on the newest export under that order.
			for i := len(out) - 1; i >= 0; i-- {
				if out[i].OrderSHA256 == sum {
					out[i].Cleaned = val(e, "outcome")
					break
				}
			}
		case audit.ExportEnd, audit.ExportFail:
			i, ok := open[sum]
			if !ok {
				continue
			}
			delete(open, sum)
			if e.Kind == audit.ExportEnd {
				out[i].Result, out[i].Files, out[i].Bytes = "done", num(e, "files"), num(e, "bytes")
			} else {
				out[i].Result, out[i].Why = "failed", val(e, "why")
			}
		}
	}
	return out
}

func configAPIService(f *Facts, p Period, end time.Time) (ConfigReview, []Count, ServiceReview) {
	c := ConfigReview{Rejected: []RejectedConfig{}}
	s := ServiceReview{Stops: []Count{}, Unclean: []UncleanStop{}, PeriodLength: int64(end.Sub(p.From) / time.Second)}
	api := map[string]int{}
	stops := map[string]int{}
	var upSince time.Time
	running := false
	for _, e := range f.Entries {
		in := p.contains(e.Time)
		switch e.Kind {
		case audit.ServiceStart:
			if running {
				// A start without a stop before it: the previous run died.
				s.UpSeconds += clipSeconds(upSince, ptr(e.Time), p.From, end)
			}
			running, upSince = true, e.Time
			if in {
				s.Starts++
			}
		case audit.ServiceStop:
			if running {
				s.UpSeconds += clipSeconds(upSince, ptr(e.Time), p.From, end)
			}
			running = false
			if in {
				stops[val(e, "reason")]++
			}
		case audit.ServiceUncleanStop:
			if in {
				s.Unclean = append(s.Unclean, UncleanStop{Noticed: e.Time.UTC(), LastAlive: ptr(at(e, "last_alive")), Boot: val(e, "boot")})
			}
		case audit.BookingInterrupted:
			if in {
				s.Interrupted += num(e, "count")
			}
		case audit.ConfigAccepted:
			if in && val(e, "source") == "reload" {
				c.Accepted++
			}
		case audit.ConfigRejected:
			if in {
				c.Rejected = append(c.Rejected, RejectedConfig{At: e.Time.UTC(), Problems: val(e, "problems"), Count: num(e, "count")})
			}
		case audit.APIRefused:
			if in {
				// One entry may stand for a flood of refusals (count).
				api[val(e, "why")] += int(max(num(e, "count"), 1))
			}
		case audit.BookingPatronLookup:
			if in {
				c.PatronLookups++
				c.PatronLookupsFound += num(e, "found")
			}
		}
	}
	if running {
		s.UpSeconds += clipSeconds(upSince, nil, p.From, end)
	}
	s.RunningNow = running
	s.Stops = counts(stops)
	return c, counts(api), s
}

func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{What: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].What < out[j].What })
	return out
}

func auditReview(f *Facts, p Period) AuditReview {
	a := AuditReview{Verification: f.Verify}
	kinds := map[string]int{}
	refusals := map[string]int{}
	for _, e := range f.Entries {
		if !p.contains(e.Time) {
			continue
		}
		a.InPeriod++
		kinds[string(e.Kind)]++
		if e.Kind == audit.WitnessRefused {
			refusals[val(e, "witness")+": "+val(e, "why")]++
		}
	}
	a.Kinds = counts(kinds)
	a.WitnessRefusals = counts(refusals)
	return a
}
