package config

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"
)

// Case is one [[case]] table: a misuse case as staff declared it. Nothing
// here says whether the case is valid; package misuse decides that, and a
// case with Problems never captures.
type Case struct {
	// Index is the position of the table in the file, from 0; it names the
	// case in messages when the id is missing.
	Index int

	ID             string
	Reason         string
	Category       string
	DeclaredBy     string
	ApprovedBy     string
	NoticePostedAt time.Time // zero when absent
	Start          time.Time
	End            time.Time
	EndedAt        time.Time
	EndedBy        string
	PCs            []string
	Mode           string // "metadata" (default when absent) or "packets"
	Snaplen        int

	// Problems found while decoding this table: unknown keys, wrong types,
	// dates without a time. Keys are relative to the case ("approved_by").
	Problems []Problem
}

// Name is how messages refer to the case: its id, or its position.
func (c Case) Name() string {
	if c.ID != "" {
		return c.ID
	}
	return fmt.Sprintf("#%d", c.Index+1)
}

// idPattern is what a case id and a PC id may look like. Both name files
// (segment names carry the case id), audit tokens, exports and case scopes,
// so they must stay valid file names on Windows.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidCaseID reports whether id may name a case: 1 to 63 letters, digits,
// '.', '_' or '-', starting with a letter or digit. It is the one rule for
// case ids; the misuse rules, segment names and audit tokens all use it.
func ValidCaseID(id string) bool { return idPattern.MatchString(id) }

// ValidPCID reports whether id may name a PC, in pc.id and in a case's pcs.
func ValidPCID(id string) bool { return idPattern.MatchString(id) }

// EffectiveEnd is when the case stops: its end, or ended_at when staff
// ended it earlier. It is the one definition of a case's end: capture,
// retention and the export all use it.
func (c Case) EffectiveEnd() time.Time {
	if !c.EndedAt.IsZero() && c.EndedAt.Before(c.End) {
		return c.EndedAt
	}
	return c.End
}

// Covers reports whether the PC with id pc is in the case's scope: listed
// in pcs, or pcs holds "*".
func (c Case) Covers(pc string) bool {
	return slices.Contains(c.PCs, "*") || slices.Contains(c.PCs, pc)
}

// Modes a case may ask for.
const (
	ModeMetadata = "metadata"
	ModePackets  = "packets"
)

// decodeCase turns one [[case]] table into a Case, collecting every problem
// instead of stopping at the first.
func decodeCase(index int, m map[string]any) Case {
	c := Case{Index: index, Mode: ModeMetadata}
	bad := func(key, format string, a ...any) {
		c.Problems = append(c.Problems, Problem{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	str := func(key string, dst *string) {
		v, ok := m[key]
		if !ok {
			return
		}
		s, ok := v.(string)
		if !ok {
			bad(key, "must be a string, not %s", tomlType(v))
			return
		}
		*dst = s
	}
	when := func(key string, dst *time.Time) {
		v, ok := m[key]
		if !ok {
			return
		}
		t, ok := v.(time.Time)
		if !ok {
			bad(key, "must be a TOML date-time such as 2026-03-01T09:00:00+01:00, not %s", tomlType(v))
			return
		}
		switch t.Location().String() {
		case "date-local":
			bad(key, "a date alone is ambiguous; give a date-time such as %sT09:00:00", t.Format(time.DateOnly))
			return
		case "time-local":
			bad(key, "a time alone is not enough; give a date-time such as 2026-03-01T%s", t.Format(time.TimeOnly))
			return
		case "datetime-local":
			// A date-time without offset is the PC's local time on that day,
			// with that day's daylight-saving rules (the TOML decoder used
			// today's offset).
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.Local)
		}
		*dst = t
	}
	for k := range m {
		if !caseKeys[k] {
			bad(k, "unknown key")
		}
	}
	str("id", &c.ID)
	str("reason", &c.Reason)
	str("category", &c.Category)
	str("declared_by", &c.DeclaredBy)
	str("approved_by", &c.ApprovedBy)
	str("ended_by", &c.EndedBy)
	str("mode", &c.Mode)
	when("notice_posted_at", &c.NoticePostedAt)
	when("start", &c.Start)
	when("end", &c.End)
	when("ended_at", &c.EndedAt)
	if v, ok := m["pcs"]; ok {
		list, ok := v.([]any)
		if !ok {
			bad("pcs", `must be a list of PC ids such as ["pc-01", "pc-02"] or ["*"], not %s`, tomlType(v))
		}
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				bad(fmt.Sprintf("pcs[%d]", i), "must be a string, not %s", tomlType(e))
				continue
			}
			c.PCs = append(c.PCs, s)
		}
	}
	if v, ok := m["snaplen"]; ok {
		n, ok := v.(int64)
		if !ok {
			bad("snaplen", "must be a whole number of bytes, not %s", tomlType(v))
		} else if n < 64 || n > 262144 {
			bad("snaplen", "must be between 64 and 262144 bytes")
		} else {
			c.Snaplen = int(n)
		}
	}
	sort.SliceStable(c.Problems, func(i, j int) bool { return c.Problems[i].Key < c.Problems[j].Key })
	return c
}

var caseKeys = map[string]bool{
	"id": true, "reason": true, "category": true, "declared_by": true, "approved_by": true,
	"notice_posted_at": true, "start": true, "end": true, "ended_at": true, "ended_by": true,
	"pcs": true, "mode": true, "snaplen": true,
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}
