package report

import (
	"slices"
	"strings"
)

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func orNone(tr printer, s string) string {
	if s == "" {
		return tr.t("unset")
	}
	return s
}

func metaPairs(m Meta, tr printer) []pair {
	ps := []pair{
		{tr.t("meta.library"), orNone(tr, m.Library.Name)},
		{tr.t("meta.responsible"), orNone(tr, m.Library.Responsible)},
		{tr.t("meta.contact"), orNone(tr, m.Library.Contact)},
		{tr.t("meta.pc"), m.PC},
	}
	if m.Period != nil {
		ps = append(ps, pair{tr.t("meta.period"), tr.t("meta.period.value", tr.time(m.Period.From), tr.time(m.Period.To))})
	}
	if m.Since != nil {
		ps = append(ps, pair{tr.t("meta.since"), tr.time(*m.Since)})
	}
	ps = append(ps,
		pair{tr.t("meta.made"), tr.stamp(m.Made)},
		pair{tr.t("meta.timezone"), m.TimeZone},
		pair{tr.t("meta.config"), short(m.Config)},
		pair{tr.t("meta.data"), m.DataDir},
		pair{tr.t("meta.version"), orNone(tr, m.Version)},
	)
	return ps
}

func footer(m Meta, tr printer) string {
	return tr.t("footer", m.PC, tr.num(m.AuditSize))
}

func (r *Review) document(tr printer) *document {
	d := &document{Lang: tr.lang, Title: r.Meta.Title, Subtitle: tr.t("review.subtitle"), Meta: metaPairs(r.Meta, tr), Footer: footer(r.Meta, tr)}
	d.Sections = append(d.Sections, section{Heading: tr.t("h.findings"), Findings: r.Findings, NoFindings: tr.t("findings.none")})

	rt := r.Retention
	ret := section{Heading: tr.t("h.retention"), Paras: []string{tr.t("retention.lead", tr.dur(secs(rt.ToleranceSeconds)))}}
	ret.Facts = []pair{
		{tr.t("retention.booking"), tr.dur(secs(rt.BookingRetentionSeconds))},
		{tr.t("retention.traffic"), tr.dur(secs(rt.TrafficRetentionSeconds))},
		{tr.t("retention.runs"), tr.t("retention.runs.value", rt.Runs, rt.DeletingRuns, rt.Deleted)},
		{tr.t("retention.effective"), tr.dur(secs(rt.MaxEffectiveSeconds))},
	}
	if s := rt.Stored; s != nil {
		ret.Facts = append(ret.Facts,
			pair{tr.t("retention.stored"), tr.t("retention.stored.value", s.Count, s.Open, s.WithPatron)},
			pair{tr.t("retention.oldest"), tr.timep(s.FirstStart)},
			pair{tr.t("retention.oldestend"), tr.timep(s.OldestEnd)})
	} else {
		ret.Facts = append(ret.Facts, pair{tr.t("retention.stored"), tr.t("retention.noregister")})
	}
	if rt.OverdueSeconds > 0 {
		ret.Facts = append(ret.Facts, pair{tr.t("retention.overdue"), tr.dur(secs(rt.OverdueSeconds))})
	}
	months := table{Caption: tr.t("retention.months"), Head: []string{tr.t("col.month"), tr.t("col.runs"), tr.t("col.deleting"),
		tr.t("col.deleted"), tr.t("col.deletedfrom"), tr.t("col.deletedto")}, Right: []bool{false, true, true, true}, Empty: tr.t("none")}
	for _, m := range rt.Months {
		months.Rows = append(months.Rows, []string{m.Month, tr.num(int64(m.Runs)), tr.num(int64(m.DeletingRuns)), tr.num(m.Deleted), tr.timep(m.From), tr.timep(m.To)})
	}
	gapsT := table{Caption: tr.t("retention.gaps"), Head: []string{tr.t("col.from"), tr.t("col.to"), tr.t("col.length"), tr.t("col.cause")},
		Empty: tr.t("retention.nogaps")}
	for _, g := range rt.Gaps {
		to := tr.time(g.To)
		if g.Open {
			to += " " + tr.t("retention.ongoing")
		}
		gapsT.Rows = append(gapsT.Rows, []string{tr.time(g.From), to, tr.dur(secs(g.Seconds)), tr.t("cause." + g.Cause)})
	}
	trafficT := table{Caption: tr.t("retention.trafficruns"), Head: []string{tr.t("col.at"), tr.t("col.segments"), tr.t("col.bytes"), tr.t("col.from"), tr.t("col.to")},
		Right: []bool{false, true, true}, Empty: tr.t("retention.notrafficruns")}
	for _, t := range rt.Traffic {
		trafficT.Rows = append(trafficT.Rows, []string{tr.time(t.At), tr.num(t.Segments), tr.bytes(t.Bytes), tr.timep(t.From), tr.timep(t.To)})
	}
	ret.Tables = []table{months, gapsT, trafficT}
	if rt.ShortStops > 0 {
		ret.After = append(ret.After, tr.t("retention.shortstops", rt.ShortStops, tr.dur(secs(rt.LongestShortStopSeconds))))
	}
	ret.After = append(ret.After, tr.t("retention.everyrun"))
	d.Sections = append(d.Sections, ret)

	cs := section{Heading: tr.t("h.cases")}
	ct := table{Head: []string{tr.t("col.case"), tr.t("col.verdict"), tr.t("col.mode"), tr.t("col.from"), tr.t("col.to"), tr.t("col.days"),
		tr.t("col.pcs"), tr.t("col.declared"), tr.t("col.approved"), tr.t("col.notice"), tr.t("col.capture")},
		Right: []bool{false, false, false, false, false, true}, Empty: tr.t("cases.none")}
	for _, c := range r.Cases {
		ct.Rows = append(ct.Rows, []string{c.ID, tr.t("verdict." + c.Verdict), tr.tOr("mode.", c.Mode), tr.timep(c.Start), tr.timep(c.End),
			tr.decimal(c.Days), strings.Join(c.PCs, ", "), orDash(c.DeclaredBy), orDash(c.ApprovedBy), tr.timep(c.NoticePostedAt), tr.dur(secs(c.CaptureSeconds))})
		for _, why := range c.Refusals {
			cs.Paras = append(cs.Paras, tr.t("cases.refusal", c.ID, why))
		}
		if !c.InConfig {
			cs.Paras = append(cs.Paras, tr.t("cases.gone", c.ID))
		}
	}
	cs.Tables = []table{ct}
	d.Sections = append(d.Sections, cs)

	cp := r.Capture
	capS := section{Heading: tr.t("h.capture"), Facts: []pair{
		{tr.t("capture.total"), tr.dur(secs(cp.TotalSeconds))},
		{tr.t("capture.errors"), tr.num(int64(cp.Errors))},
		{tr.t("capture.quota"), tr.num(int64(cp.Quota))},
	}}
	runT := table{Head: []string{tr.t("col.case"), tr.t("col.mode"), tr.t("col.interface"), tr.t("col.from"), tr.t("col.to"), tr.t("col.why"),
		tr.t("col.packets"), tr.t("col.drops")}, Right: []bool{false, false, false, false, false, false, true, true}, Empty: tr.t("capture.none")}
	for _, c := range cp.Runs {
		runT.Rows = append(runT.Rows, []string{c.Case, tr.tOr("mode.", c.Mode), orDash(c.Interface), tr.time(c.Start), tr.timep(c.Stop),
			tr.tOr("why.", c.Why), tr.num(c.Packets), tr.num(c.Drops)})
	}
	capS.Tables = []table{runT}
	d.Sections = append(d.Sections, capS)

	t := r.Traffic
	ts := section{Heading: tr.t("h.traffic"), Facts: []pair{
		{tr.t("traffic.sealed"), tr.t("traffic.sealed.value", t.Sealed, tr.bytes(t.SealedBytes), t.SealedRecords)},
		{tr.t("traffic.deleted"), tr.t("traffic.deleted.value", t.Deleted, tr.bytes(t.DeletedBytes))},
		{tr.t("traffic.lost"), tr.num(int64(t.Lost))},
		{tr.t("traffic.holds"), tr.t("traffic.holds.value", t.HoldsPlaced, t.HoldsReleased)},
	}}
	if !t.StoreAvailable {
		ts.Paras = []string{tr.t("traffic.nostore")}
	}
	storedT := table{Caption: tr.t("traffic.stored"), Head: []string{tr.t("col.case"), tr.t("col.segments"), tr.t("col.bytes"), tr.t("col.records"),
		tr.t("col.from"), tr.t("col.to"), tr.t("col.held"), tr.t("col.deleteafter")}, Right: []bool{false, true, true, true, false, false, true},
		Empty: tr.t("none")}
	for _, c := range t.Stored {
		if c.Segments == 0 {
			continue
		}
		storedT.Rows = append(storedT.Rows, []string{c.Case, tr.num(int64(c.Segments)), tr.bytes(c.Bytes), tr.num(c.Records),
			tr.timep(c.From), tr.timep(c.To), tr.num(int64(c.Held)), tr.timep(c.DeleteAfter)})
	}
	holdT := table{Caption: tr.t("traffic.openholds"), Head: []string{tr.t("col.order"), tr.t("col.ordersum"), tr.t("col.segments"), tr.t("col.bytes"),
		tr.t("col.placed"), tr.t("col.age")}, Right: []bool{false, false, true, true}, Empty: tr.t("none")}
	for _, h := range t.Holds {
		holdT.Rows = append(holdT.Rows, []string{h.OrderRef, short(h.OrderSHA256), tr.num(int64(h.Segments)), tr.bytes(h.Bytes), tr.time(h.Placed), tr.dur(secs(h.AgeSeconds))})
	}
	ts.Tables = []table{storedT, holdT}
	d.Sections = append(d.Sections, ts)

	ex := section{Heading: tr.t("h.exports"), Paras: []string{tr.t("exports.lead")}}
	exT := table{Head: []string{tr.t("col.at"), tr.t("col.order"), tr.t("col.window"), tr.t("col.pcs"), tr.t("col.result"), tr.t("col.files"), tr.t("col.bytes")},
		Right: []bool{false, false, false, true, false, true, true}, Empty: tr.t("exports.none")}
	for _, e := range r.Exports {
		order := e.OrderRef
		if order == "" {
			order = "sha256 " + short(e.OrderSHA256)
		}
		pcs := tr.num(e.PCs)
		if e.PCs == 0 {
			pcs = tr.t("export.allpcs")
		}
		exT.Rows = append(exT.Rows, []string{tr.time(e.At), order, tr.time(e.From) + " – " + tr.time(e.To), pcs,
			exportResult(e, tr), tr.num(e.Files), tr.bytes(e.Bytes)})
	}
	ex.Tables = []table{exT}
	d.Sections = append(d.Sections, ex)

	cf := section{Heading: tr.t("h.config"), Facts: []pair{
		{tr.t("config.accepted"), tr.num(int64(r.Config.Accepted))},
		{tr.t("config.rejected"), tr.num(int64(len(r.Config.Rejected)))},
		{tr.t("config.lookups"), tr.t("config.lookups.value", r.Config.PatronLookups, r.Config.PatronLookupsFound)},
	}}
	rejT := table{Caption: tr.t("config.rejectedlist"), Head: []string{tr.t("col.at"), tr.t("col.problems")}, Empty: tr.t("none")}
	for _, c := range r.Config.Rejected {
		rejT.Rows = append(rejT.Rows, []string{tr.time(c.At), c.Problems})
	}
	apiT := table{Caption: tr.t("api.refusals"), Head: []string{tr.t("col.why"), tr.t("col.count")}, Right: []bool{false, true}, Empty: tr.t("none")}
	for _, c := range r.API {
		apiT.Rows = append(apiT.Rows, []string{c.What, tr.num(int64(c.Count))})
	}
	cf.Tables = []table{rejT, apiT}
	d.Sections = append(d.Sections, cf)

	sv := r.Service
	var stops []string
	for _, c := range sv.Stops {
		stops = append(stops, tr.tOr("stop.", c.What)+": "+tr.num(int64(c.Count)))
	}
	svS := section{Heading: tr.t("h.service"), Facts: []pair{
		{tr.t("service.starts"), tr.num(int64(sv.Starts))},
		{tr.t("service.stops"), orDash(strings.Join(stops, "; "))},
		{tr.t("service.unclean"), tr.num(int64(len(sv.Unclean)))},
		{tr.t("service.interrupted"), tr.num(sv.Interrupted)},
		{tr.t("service.up"), tr.t("service.up.value", tr.dur(secs(sv.UpSeconds)), tr.dur(secs(sv.PeriodLength)))},
	}}
	unT := uncleanTable(sv.Unclean, tr)
	svS.Tables = []table{unT}
	d.Sections = append(d.Sections, svS)

	d.Sections = append(d.Sections, auditSection(r.Audit, tr))
	return d
}

func auditSection(a AuditReview, tr printer) section {
	s := section{Heading: tr.t("h.audit"), Facts: []pair{{tr.t("audit.verified"), verdict(a.Verification, tr)}}}
	s.Facts = append(s.Facts,
		pair{tr.t("audit.entries"), tr.t("audit.entries.value", a.Entries, a.InPeriod)},
		pair{tr.t("audit.checkpoints"), tr.t("audit.checkpoints.value", a.Checkpoints, a.LatestSize)},
	)
	off := tr.t("audit.offpc.none")
	if a.LatestWitnessed != nil {
		off = tr.t("audit.offpc.witnessed")
	}
	if a.Trusted != nil {
		off = tr.t("audit.offpc.trusted", a.Trusted.Size, tr.time(a.Trusted.Covers))
	}
	s.Facts = append(s.Facts, pair{tr.t("audit.offpc"), off},
		pair{tr.t("audit.witnessed"), tr.t("audit.witnessed.count", a.Witnessed, a.WitnessQuorum)},
		pair{tr.t("audit.witnessed.last"), witnessedText(a.LatestWitnessed, tr)})
	s.Paras = []string{tr.t("witness.lead")}
	if a.WitnessKeysGiven {
		s.Paras = []string{tr.t("witness.lead.given")}
	}
	if n := len(a.CosignaturesRejected); n > 0 {
		var whys []string
		for _, c := range a.CosignaturesRejected {
			if w := tr.t("cosig." + c.Why); !slices.Contains(whys, w) {
				whys = append(whys, w)
			}
		}
		s.After = append(s.After, tr.t("audit.rejected", n, strings.Join(whys, "; ")))
	}
	if a.CosignaturesUnchecked > 0 {
		s.After = append(s.After, tr.t("audit.unchecked", a.CosignaturesUnchecked))
	}
	kt := table{Caption: tr.t("audit.kinds"), Head: []string{tr.t("col.kind"), tr.t("col.count")}, Right: []bool{false, true}, Empty: tr.t("none")}
	for _, k := range a.Kinds {
		kt.Rows = append(kt.Rows, []string{k.What, tr.num(int64(k.Count))})
	}
	s.Tables = []table{witnessTable(a, tr), kt}
	return s
}

func verdict(v Verification, tr printer) string {
	if v.OK {
		if v.VerifierKeyGiven {
			return tr.t("audit.ok.key")
		}
		return tr.t("audit.ok")
	}
	return tr.t("audit.bad", v.Problem)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func exportResult(e ExportReview, tr printer) string {
	s := tr.t("export." + e.Result)
	if e.Cleaned != "" {
		s += "; " + tr.t("export.cleaned", e.Cleaned)
	}
	return s
}

func uncleanTable(us []UncleanStop, tr printer) table {
	t := table{Caption: tr.t("service.uncleanlist"), Head: []string{tr.t("col.noticed"), tr.t("col.lastalive"), tr.t("col.boot")}, Empty: tr.t("none")}
	for _, u := range us {
		t.Rows = append(t.Rows, []string{tr.time(u.Noticed), tr.timep(u.LastAlive), tr.tOr("boot.", orDash(u.Boot))})
	}
	return t
}
