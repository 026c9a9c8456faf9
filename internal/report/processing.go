package report

import (
	"slices"
	"strconv"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// Processing is the record of processing (GDPR Art. 30) for what carrel
// processes on this PC. Its JSON form is described by
// schema/processing.schema.json.
type Processing struct {
	Meta     Meta             `json:"meta"`
	Settings ProcessingConfig `json:"settings"`
	Rows     []ProcessingRow  `json:"data_points"`
	Findings []Finding        `json:"findings"`
}

// ProcessingConfig is the configuration the record rests on.
type ProcessingConfig struct {
	BookingRetentionSeconds int64    `json:"booking_retention_seconds"`
	TrafficRetentionSeconds int64    `json:"traffic_retention_seconds"`
	MaxCaseDays             int      `json:"max_case_days"`
	Recipients              []string `json:"traffic_recipients"`
	Cases                   int      `json:"cases_declared"`
	PacketsCases            []string `json:"packets_cases"`
}

// ProcessingRow is one data point: what is processed, why, on which
// basis, from where, to whom, how sensitive, for how long, how protected,
// and the risk.
type ProcessingRow struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Store       string `json:"store"`
	When        string `json:"when"` // always, case, packets-case
	Active      bool   `json:"processed_under_current_config"`
	Purpose     string `json:"purpose"`
	LegalBasis  string `json:"legal_basis"`
	Source      string `json:"source"`
	Recipients  string `json:"recipients"`
	Sensitivity string `json:"sensitivity"`
	Retention   string `json:"retention"`
	Security    string `json:"security"`
	Risk        string `json:"risk"`
}

// dataPoints are the data points carrel processes, in the order of the
// record; each names its store and when it is processed. Their texts are
// in the catalogue under "dp.<id>.<field>".
var dataPoints = []struct{ id, store, when string }{
	{"pc-id", "bookings.db, traffic/", "always"},
	{"booking-reference", "bookings.db", "always"},
	{"booking-times", "bookings.db", "always"},
	{"booking-planned-end", "bookings.db", "always"},
	{"booking-ended-how", "bookings.db", "always"},
	{"patron-card-hmac", "bookings.db", "always"},
	{"traffic-flows", "traffic/", "case"},
	{"traffic-names", "traffic/", "case"},
	{"traffic-packets", "traffic/", "packets-case"},
	{"audit-entries", "audit.db", "always"},
}

// BuildProcessing makes the record of processing from the live config.
func BuildProcessing(f *Facts, lang string, loc *time.Location) *Processing {
	tr := newPrinter(lang, loc)
	cfg := f.Config
	p := &Processing{Meta: meta(f, "processing", tr)}
	p.Settings = ProcessingConfig{BookingRetentionSeconds: int64(cfg.Booking.Retention.D() / time.Second),
		TrafficRetentionSeconds: int64(cfg.Capture.TrafficRetention.D() / time.Second), MaxCaseDays: cfg.Capture.MaxCaseDays,
		Recipients: append([]string{}, cfg.Capture.Recipients...), Cases: len(cfg.Cases), PacketsCases: []string{}}
	// A case the service refused processes nothing: its latest verdict in
	// the audit log decides.
	refused := map[string]bool{}
	for _, e := range f.Entries {
		switch e.Kind {
		case audit.CaseAccepted:
			refused[val(e, "case")] = false
		case audit.CaseRejected:
			refused[val(e, "case")] = true
		}
	}
	valid := 0
	for _, c := range cfg.Cases {
		if refused[c.Name()] {
			continue
		}
		valid++
		if c.Mode == config.ModePackets {
			p.Settings.PacketsCases = append(p.Settings.PacketsCases, c.Name())
		}
	}
	booking := tr.dur(cfg.Booking.Retention.D())
	traffic := tr.dur(cfg.Capture.TrafficRetention.D())
	for _, dp := range dataPoints {
		row := ProcessingRow{ID: dp.id, Store: dp.store, When: dp.when}
		switch dp.when {
		case "always":
			row.Active = true
		case "case":
			row.Active = valid > 0
		case "packets-case":
			row.Active = len(p.Settings.PacketsCases) > 0
		}
		k := "dp." + dp.id + "."
		row.Name, row.Purpose, row.LegalBasis = tr.t(k+"name"), tr.t(k+"purpose"), tr.t(k+"basis")
		row.Source, row.Sensitivity, row.Security, row.Risk = tr.t(k+"source"), tr.t(k+"sensitivity"), tr.t(k+"security"), tr.t(k+"risk")
		row.Recipients = tr.t("dp.recipients")
		if dp.id == "audit-entries" {
			row.Recipients = tr.t("dp.audit-entries.recipients")
		}
		switch dp.store {
		case "bookings.db":
			row.Retention = tr.t("dp.retention.booking", booking)
		case "traffic/":
			row.Retention = tr.t("dp.retention.traffic", traffic)
		case "audit.db":
			row.Retention = tr.t("dp.retention.audit")
		default:
			row.Retention = tr.t("dp.retention.pc", booking, traffic)
		}
		p.Rows = append(p.Rows, row)
	}
	// The rules that judge the configuration apply here too (case-refused
	// is not one of them: the review reports it): a record of
	// processing that states a retention above 28 days or a packets case
	// needs the same action as the review says.
	rv := &Review{Meta: p.Meta, Retention: RetentionReview{BookingRetentionSeconds: p.Settings.BookingRetentionSeconds}, Audit: AuditReview{Verification: Verification{OK: true}}}
	for _, c := range cfg.Cases {
		verdict := "accepted"
		if refused[c.Name()] {
			verdict = "refused"
		}
		rv.Cases = append(rv.Cases, CaseReview{ID: c.Name(), Mode: c.Mode, Verdict: verdict})
	}
	p.Findings = []Finding{}
	for _, ru := range rules {
		if !slices.Contains(processingRules, ru.id) {
			continue
		}
		for _, msg := range ru.check(rv, tr) {
			p.Findings = append(p.Findings, Finding{Rule: ru.id, Message: msg, Basis: tr.basis(ru), Frame: ru.frame})
		}
	}
	return p
}

func (p *Processing) document(tr printer) *document {
	d := &document{Lang: tr.lang, Title: p.Meta.Title, Subtitle: tr.t("processing.subtitle"), Meta: metaPairs(p.Meta, tr), Footer: footer(p.Meta, tr)}
	s := p.Settings
	recips := tr.t("processing.norecipients")
	if len(s.Recipients) > 0 {
		recips = tr.t("processing.recipients.value", len(s.Recipients))
	}
	packets := tr.t("processing.nopackets")
	if len(s.PacketsCases) > 0 {
		packets = joinList(s.PacketsCases)
	}
	d.Sections = append(d.Sections, section{Heading: tr.t("h.processing.settings"), Paras: []string{tr.t("processing.lead")}, Facts: []pair{
		{tr.t("meta.responsible"), orNone(tr, p.Meta.Library.Responsible)},
		{tr.t("processing.rules"), orNone(tr, p.Meta.Library.Rules)},
		{tr.t("retention.booking"), tr.dur(secs(s.BookingRetentionSeconds))},
		{tr.t("retention.traffic"), tr.dur(secs(s.TrafficRetentionSeconds))},
		{tr.t("processing.maxcase"), tr.t("processing.maxcase.value", s.MaxCaseDays)},
		{tr.t("processing.cases"), tr.num(int64(s.Cases))},
		{tr.t("processing.packets"), packets},
		{tr.t("processing.recipients"), recips},
	}})
	for i, r := range p.Rows {
		d.Sections = append(d.Sections, section{Heading: tr.t("processing.row", i+1, r.Name), Facts: []pair{
			{tr.t("col.when"), tr.t("when."+r.When) + " — " + tr.t("processing.active."+strconv.FormatBool(r.Active))},
			{tr.t("col.store"), r.Store},
			{tr.t("col.purpose"), r.Purpose},
			{tr.t("col.basis"), r.LegalBasis},
			{tr.t("col.source"), r.Source},
			{tr.t("col.recipients"), r.Recipients},
			{tr.t("col.sensitivity"), r.Sensitivity},
			{tr.t("col.retention"), r.Retention},
			{tr.t("col.security"), r.Security},
			{tr.t("col.risk"), r.Risk},
		}})
	}
	d.Sections = append(d.Sections, section{Heading: tr.t("h.findings"), Findings: p.Findings, NoFindings: tr.t("findings.none")})
	return d
}
