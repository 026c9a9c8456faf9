package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Languages and formats the reports come in.
var (
	Languages = []string{"da", "en"}
	Formats   = []string{"text", "html", "json"}
)

// printer writes words, times and numbers in one language and time zone.
type printer struct {
	lang string
	loc  *time.Location
}

func newPrinter(lang string, loc *time.Location) printer {
	if loc == nil {
		loc = time.UTC
	}
	if _, ok := catalogue["title.review"][lang]; !ok {
		lang = "en"
	}
	return printer{lang: lang, loc: loc}
}

// t returns the text of key in the printer's language, formatted with a.
// A key missing from the catalogue is a bug the catalogue test catches; it
// prints as the key so that a report is never silently short.
func (p printer) t(key string, a ...any) string {
	s, ok := catalogue[key][p.lang]
	if !ok {
		s = key
	}
	if len(a) == 0 {
		return s
	}
	for i, v := range a {
		switch n := v.(type) {
		case int:
			a[i] = p.num(int64(n))
		case int64:
			a[i] = p.num(n)
		}
	}
	return fmt.Sprintf(s, a...)
}

// tOr is t for keys made from data (a cause, a reason code): a value
// carrel does not know is printed as it is.
func (p printer) tOr(prefix, v string) string {
	if _, ok := catalogue[prefix+v]; ok {
		return p.t(prefix + v)
	}
	return v
}

// time prints a moment in the report's time zone, to the minute, in the
// ISO 8601 form both Danish and English readers take without doubt.
func (p printer) time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format("2006-01-02 15:04")
}

func (p printer) timep(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return p.time(*t)
}

// date prints a day.
func (p printer) date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format("2006-01-02")
}

// stamp prints the moment a report was made, with its zone.
func (p printer) stamp(t time.Time) string {
	return t.In(p.loc).Format("2006-01-02 15:04:05 MST")
}

// dur prints a duration in days, hours and minutes, the largest two.
func (p printer) dur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	days := int64(d / (24 * time.Hour))
	hours := int64(d % (24 * time.Hour) / time.Hour)
	mins := int64(d % time.Hour / time.Minute)
	unit := func(n int64, one, many string) string {
		if n == 1 {
			return "1 " + p.t(one)
		}
		return p.num(n) + " " + p.t(many)
	}
	switch {
	case days > 0 && hours > 0:
		return unit(days, "unit.day", "unit.days") + " " + unit(hours, "unit.hour", "unit.hours")
	case days > 0:
		return unit(days, "unit.day", "unit.days")
	case hours > 0 && mins > 0:
		return unit(hours, "unit.hour", "unit.hours") + " " + unit(mins, "unit.minute", "unit.minutes")
	case hours > 0:
		return unit(hours, "unit.hour", "unit.hours")
	default:
		return unit(mins, "unit.minute", "unit.minutes")
	}
}

// num prints an integer with the language's thousands separator.
func (p printer) num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := ","
	if p.lang == "da" {
		sep = "."
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytes prints a size in bytes, KB, MB or GB (powers of 1000).
func (p printer) bytes(n int64) string {
	if n < 1000 {
		return p.num(n) + " B"
	}
	v, unit := float64(n)/1e3, "kB"
	if n >= 1e9 {
		v, unit = float64(n)/1e9, "GB"
	} else if n >= 1e6 {
		v, unit = float64(n)/1e6, "MB"
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if p.lang == "da" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s + " " + unit
}

// decimal prints a number with one decimal.
func (p printer) decimal(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if p.lang == "da" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

func (p printer) yesno(b bool) string {
	if b {
		return p.t("yes")
	}
	return p.t("no")
}

// basis prints the rule behind a finding with the frame points it rests on.
func (p printer) basis(r rule) string {
	var pts []string
	for _, n := range r.frame {
		pts = append(pts, p.t(fmt.Sprintf("frame.%d", n)))
	}
	return p.t("rule."+r.id) + " " + p.t("frame.lead") + " " + strings.Join(pts, " ")
}
