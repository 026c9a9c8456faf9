package report

import (
	"fmt"
	"time"
)

// Report is one of *Review, *Processing or *Breach.
type Report interface {
	document(tr printer) *document
	meta() Meta
}

func (r *Review) meta() Meta     { return r.Meta }
func (p *Processing) meta() Meta { return p.Meta }
func (b *Breach) meta() Meta     { return b.Meta }

// Render prints rep in format (text, html or json), in the language and
// time zone it was built with.
func Render(rep Report, format string) ([]byte, error) {
	m := rep.meta()
	loc, err := time.LoadLocation(m.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("report time zone %q: %w", m.TimeZone, err)
	}
	tr := newPrinter(m.Lang, loc)
	switch format {
	case "text":
		return append(renderText(rep.document(tr)), '\n'), nil
	case "html":
		d := rep.document(tr)
		d.PageFoot = tr.t("meta.pc") + " " + m.PC + " · " + tr.stamp(m.Made)
		return renderHTML(d)
	case "json":
		return renderJSON(rep)
	}
	return nil, fmt.Errorf("no report format %q; want text, html or json", format)
}
