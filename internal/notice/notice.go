package notice

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
)

// Languages and formats Render supports.
var (
	Languages = []string{"da", "en"}
	Formats   = []string{"text", "html"}
)

// Input is what a notice is made from.
type Input struct {
	Case      config.Case
	Library   config.Library
	Retention time.Duration // capture.traffic_retention
	Location  *time.Location
}

// view is what the templates see: every text already in the chosen language.
type view struct {
	Lang, Title, Lead, Intro                 string
	PCsLabel, PCs                            string
	PeriodLabel, Period                      string
	RecordedLabel, Recorded, NotRecorded     string
	SealedLabel, Sealed                      string
	KeptLabel, Kept                          string
	ResponsibleLabel, Responsible            string
	ContactLabel, Contact, RulesLabel, Rules string
	CaseLabel, CaseID, Posted                string
}

// Render writes the notice for in, in lang ("da" or "en") and format
// ("text" or "html").
func Render(in Input, lang, format string) ([]byte, error) {
	tr, ok := texts[lang]
	if !ok {
		return nil, fmt.Errorf("no notice in language %q; want one of %s", lang, strings.Join(Languages, ", "))
	}
	loc := in.Location
	if loc == nil {
		loc = time.Local
	}
	c := in.Case
	end := c.End
	if !c.EndedAt.IsZero() && c.EndedAt.Before(end) {
		end = c.EndedAt
	}
	unset := tr.unset
	or := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return unset
		}
		return s
	}
	pcs := strings.Join(c.PCs, ", ")
	if len(c.PCs) == 1 && c.PCs[0] == "*" {
		pcs = tr.allPCs
	}
	v := view{
		Lang: lang, Title: tr.title, Lead: fmt.Sprintf(tr.lead, tr.category(c.Category)),
		Intro:    tr.intro,
		PCsLabel: tr.pcsLabel, PCs: or(pcs),
		PeriodLabel: tr.periodLabel, Period: fmt.Sprintf(tr.period, tr.when(c.Start, loc), tr.when(end, loc)),
		RecordedLabel: tr.recordedLabel, Recorded: tr.recorded(c), NotRecorded: tr.notRecorded,
		SealedLabel: tr.sealedLabel, Sealed: tr.sealed,
		KeptLabel: tr.keptLabel, Kept: fmt.Sprintf(tr.kept, tr.duration(in.Retention)),
		ResponsibleLabel: tr.responsibleLabel, Responsible: or(in.Library.Responsible) + lib(in.Library.Name),
		ContactLabel: tr.contactLabel, Contact: or(in.Library.Contact),
		RulesLabel: tr.rulesLabel, Rules: or(in.Library.Rules),
		CaseLabel: tr.caseLabel, CaseID: c.Name(),
	}
	if !c.NoticePostedAt.IsZero() {
		v.Posted = fmt.Sprintf(tr.posted, tr.when(c.NoticePostedAt, loc))
	}
	var b bytes.Buffer
	var err error
	switch format {
	case "text":
		err = textTemplate.Execute(&b, v)
	case "html":
		err = htmlTemplate.Execute(&b, v)
	default:
		return nil, fmt.Errorf("no notice format %q; want text or html", format)
	}
	if err != nil {
		return nil, fmt.Errorf("rendering notice: %w", err)
	}
	return b.Bytes(), nil
}

func lib(name string) string {
	if strings.TrimSpace(name) == "" {
		return ""
	}
	return ", " + name
}

var textTemplate = texttemplate.Must(texttemplate.New("text").Parse(`{{.Title}}

{{.Lead}}
{{.Intro}}

{{.PCsLabel}}: {{.PCs}}
{{.PeriodLabel}}: {{.Period}}

{{.RecordedLabel}}:
  {{.Recorded}}
  {{.NotRecorded}}

{{.SealedLabel}}:
  {{.Sealed}}

{{.KeptLabel}}: {{.Kept}}
{{.ResponsibleLabel}}: {{.Responsible}}
{{.ContactLabel}}: {{.Contact}}
{{.RulesLabel}}: {{.Rules}}

{{.CaseLabel}} {{.CaseID}}{{if .Posted}} · {{.Posted}}{{end}}
`))

var htmlTemplate = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
@page { size: A4; margin: 18mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 13pt; line-height: 1.45; max-width: 170mm; margin: 0 auto; color: #000; }
h1 { font-size: 24pt; margin: 0 0 8mm; border-bottom: 2pt solid #000; padding-bottom: 3mm; }
.lead { font-size: 16pt; font-weight: bold; }
dl { display: grid; grid-template-columns: 45mm 1fr; gap: 2mm 5mm; margin: 6mm 0; }
dt { font-weight: bold; }
dd { margin: 0; }
footer { margin-top: 10mm; font-size: 10pt; color: #333; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="lead">{{.Lead}}</p>
<p>{{.Intro}}</p>
<dl>
<dt>{{.PCsLabel}}</dt><dd>{{.PCs}}</dd>
<dt>{{.PeriodLabel}}</dt><dd>{{.Period}}</dd>
<dt>{{.RecordedLabel}}</dt><dd>{{.Recorded}}<br>{{.NotRecorded}}</dd>
<dt>{{.SealedLabel}}</dt><dd>{{.Sealed}}</dd>
<dt>{{.KeptLabel}}</dt><dd>{{.Kept}}</dd>
<dt>{{.ResponsibleLabel}}</dt><dd>{{.Responsible}}</dd>
<dt>{{.ContactLabel}}</dt><dd>{{.Contact}}</dd>
<dt>{{.RulesLabel}}</dt><dd>{{.Rules}}</dd>
</dl>
<footer>{{.CaseLabel}} {{.CaseID}}{{if .Posted}} · {{.Posted}}{{end}}</footer>
</body>
</html>
`))
