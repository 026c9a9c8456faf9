package report

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"
)

// document is a report laid out for reading, in one language: what the
// text and HTML renderers print. JSON is written from the report's own
// types instead.
type document struct {
	Lang     string
	Title    string
	Subtitle string
	Meta     []pair
	Sections []section
	Footer   string
	// PageFoot is printed at the foot of every printed page beside the
	// title: the PC and the moment the report was made.
	PageFoot string
}

type pair struct{ Label, Value string }

type section struct {
	Heading  string
	Paras    []string
	Facts    []pair
	Tables   []table
	Findings []Finding
	// Blanks are lines for people to fill in by hand (breach report).
	Blanks []string
	// NoFindings is printed when Findings is empty in a findings section.
	NoFindings string
	// After are paragraphs printed after the tables.
	After []string
}

type table struct {
	Caption string
	Head    []string
	Rows    [][]string
	// Right says which columns hold numbers.
	Right []bool
	Empty string // printed instead of a table without rows
}

const textWidth = 78

// renderText prints d as plain text, 78 columns wide.
func renderText(d *document) []byte {
	var b bytes.Buffer
	b.WriteString(d.Title + "\n" + strings.Repeat("=", utf8.RuneCountInString(d.Title)) + "\n")
	if d.Subtitle != "" {
		b.WriteString(wrap(d.Subtitle, textWidth, "") + "\n")
	}
	b.WriteString("\n")
	writePairs(&b, d.Meta, "")
	for _, s := range d.Sections {
		b.WriteString("\n" + s.Heading + "\n" + strings.Repeat("-", utf8.RuneCountInString(s.Heading)) + "\n")
		for _, p := range s.Paras {
			b.WriteString(wrap(p, textWidth, "") + "\n\n")
		}
		if len(s.Facts) > 0 {
			writePairs(&b, s.Facts, "")
			b.WriteString("\n")
		}
		for _, t := range s.Tables {
			writeTable(&b, t)
			b.WriteString("\n")
		}
		for _, p := range s.After {
			b.WriteString(wrap(p, textWidth, "") + "\n\n")
		}
		if s.NoFindings != "" && len(s.Findings) == 0 {
			b.WriteString(wrap(s.NoFindings, textWidth, "") + "\n\n")
		}
		for i, f := range s.Findings {
			fmt.Fprintf(&b, "%d. [%s]\n", i+1, f.Rule)
			b.WriteString(wrap(f.Message, textWidth, "   ") + "\n")
			b.WriteString(wrap(f.Basis, textWidth, "   ") + "\n\n")
		}
		for _, bl := range s.Blanks {
			b.WriteString(bl + ":\n")
			for range 3 {
				b.WriteString("   " + strings.Repeat("_", textWidth-3) + "\n")
			}
			b.WriteString("\n")
		}
	}
	if d.Footer != "" {
		b.WriteString("\n" + wrap(d.Footer, textWidth, "") + "\n")
	}
	return []byte(printable(strings.TrimRight(b.String(), "\n")))
}

// printable escapes what could paint a terminal: control characters
// (but the line breaks the renderer wrote) and bidirectional overrides.
// Names in a report come from the config and the stores, which others
// typed.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func writePairs(b *bytes.Buffer, ps []pair, indent string) {
	w := 0
	for _, p := range ps {
		w = max(w, utf8.RuneCountInString(p.Label))
	}
	for _, p := range ps {
		pad := strings.Repeat(" ", w-utf8.RuneCountInString(p.Label))
		lead := indent + p.Label + ":" + pad + " "
		b.WriteString(wrapHanging(lead, p.Value, textWidth) + "\n")
	}
}

func writeTable(b *bytes.Buffer, t table) {
	if t.Caption != "" {
		b.WriteString(t.Caption + "\n")
	}
	if len(t.Rows) == 0 {
		b.WriteString("  " + t.Empty + "\n")
		return
	}
	widths := make([]int, len(t.Head))
	for i, h := range t.Head {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.Rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var l strings.Builder
		l.WriteString("  ")
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i < len(t.Right) && t.Right[i] {
				l.WriteString(pad + c)
			} else {
				l.WriteString(c + pad)
			}
			if i < len(cells)-1 {
				l.WriteString("  ")
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(t.Head)
	rule := make([]string, len(t.Head))
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	line(rule)
	for _, r := range t.Rows {
		line(r)
	}
}

// wrap breaks s into lines of at most width runes, each starting with
// indent. A word longer than a line stays whole.
func wrap(s string, width int, indent string) string {
	return wrapHanging(indent, s, width)
}

// wrapHanging starts with lead and indents following lines to its width.
func wrapHanging(lead, s string, width int) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(lead))
	var b strings.Builder
	line := lead
	empty := true
	for _, w := range strings.Fields(s) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line, empty = indent, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	b.WriteString(strings.TrimRight(line, " "))
	return b.String()
}

//go:embed report.html.tmpl
var templates embed.FS

var htmlTemplate = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
	"right": func(t table, i int) bool {
		return i < len(t.Right) && t.Right[i]
	},
}).ParseFS(templates, "report.html.tmpl"))

// renderHTML prints d as one HTML page laid out for A4 paper.
func renderHTML(d *document) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("rendering the report as HTML: %w", err)
	}
	return b.Bytes(), nil
}

func renderJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering the report as JSON: %w", err)
	}
	return append(b, '\n'), nil
}
