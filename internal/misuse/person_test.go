package misuse

import (
	"strings"
	"testing"
	"time"
)

// TestFourEyesSamePerson: a name that a reader of the config cannot tell
// from declared_by is the same person, so the case is refused; a name that
// is really different is a second person.
func TestFourEyesSamePerson(t *testing.T) {
	const declared = "Anne Berg"
	tests := []struct {
		name, approved string
		same           bool
	}{
		{"identical", "Anne Berg", true},
		{"zero-width space", "Anne\u200b Berg", true},
		{"zero-width space inside a word", "An\u200bne Berg", true},
		{"combining acute after g", "Anne Berg\u0301", true},
		{"precomposed accent", "Anne Bérg", true},
		{"combining grapheme joiner", "Anne\u034f Berg", true},
		{"no-break space", "Anne\u00a0Berg", true},
		{"narrow no-break space", "Anne\u202fBerg", true},
		{"ideographic space", "Anne\u3000Berg", true},
		{"em space and tab", "Anne\u2003\tBerg", true},
		{"full-width letters", "Ａｎｎｅ Ｂｅｒｇ", true},
		{"mathematical bold letters", "𝐀𝐧𝐧𝐞 𝐁𝐞𝐫𝐠", true},
		{"right-to-left mark", "\u200fAnne Berg", true},
		{"left-to-right mark inside", "Anne\u200e Berg", true},
		{"right-to-left override and pop", "\u202eAnne Berg\u202c", true},
		{"right-to-left isolate", "\u2067Anne Berg\u2069", true},
		{"zero-width joiner and non-joiner", "An\u200dne Be\u200crg", true},
		{"word joiner", "Anne\u2060 Berg", true},
		{"soft hyphen", "An\u00adne Berg", true},
		{"byte-order mark", "\ufeffAnne Berg", true},
		{"variation selector", "Anne\ufe0f Berg", true},
		{"Hangul filler", "Anne \u3164Berg", true},
		{"Mongolian vowel separator", "Anne\u180e Berg", true},
		{"upper case", "ANNE BERG", true},
		{"spacing and case", "  anne   BERG ", true},
		{"newline between names", "Anne\nBerg", true},
		{"fi ligature", "Anne Bergﬁ", false},
		{"other person", "Bo Dahl", false},
		{"one letter more", "Anne Bergh", false},
		{"one letter other", "Anna Berg", false},
		{"hyphenated", "Anne-Berg", false},
		{"no space between", "AnneBerg", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			c.DeclaredBy, c.ApprovedBy = declared, tc.approved
			cd := Decide(cfgWith(c), "pc-01", t0.Add(time.Hour)).Cases[0]
			refused := cd.State == StateRefused && strings.Contains(cd.Reason, "approved_by: is the same person as declared_by")
			if refused != tc.same {
				t.Errorf("declared_by %q, approved_by %q: state %s (%s); want same person = %v", declared, tc.approved, cd.State, cd.Reason, tc.same)
			}
		})
	}
}

// TestPersonFolds checks the normal form itself, beyond declared_by =
// "Anne Berg": folding works for both sides and for other scripts.
func TestPersonFolds(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"Strauß", "STRAUSS"},
		{"ΣΟΦΙΑ", "σοφια"},
		{"Σοφίας", "ΣΟΦΙΑΣ"},
		{"İlkay", "ilkay"},
		{"Zoë\u200b", "ZOE"},
		{"Ｊｏｓé", "jose"},
		{"Åse", "A\u030ase"},
	} {
		if pa, pb := person(tc.a), person(tc.b); pa != pb {
			t.Errorf("person(%q) = %q, person(%q) = %q; want the same", tc.a, pa, tc.b, pb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"Anne", "Anna"},
		{"Аnne", "Anne"}, // Cyrillic А: see person's doc
		{"李", "季"},
	} {
		if pa, pb := person(tc.a), person(tc.b); pa == pb {
			t.Errorf("person(%q) = person(%q) = %q; want them apart", tc.a, tc.b, pa)
		}
	}
}

// TestInvisibleNameIsMissing: a name made only of invisible characters or
// spaces is no name.
func TestInvisibleNameIsMissing(t *testing.T) {
	for _, blank := range []string{"\u200b", "\u00a0", "\u200f\u200e", "\ufeff \u3000", "\u0301", "\u00ad"} {
		c := valid()
		c.ApprovedBy = blank
		if cd := Decide(cfgWith(c), "pc-01", t0.Add(time.Hour)).Cases[0]; !strings.Contains(cd.Reason, "approved_by: missing") {
			t.Errorf("approved_by %q: %s (%s); want approved_by: missing", blank, cd.State, cd.Reason)
		}
		c = valid()
		c.DeclaredBy = blank
		if cd := Decide(cfgWith(c), "pc-01", t0.Add(time.Hour)).Cases[0]; !strings.Contains(cd.Reason, "declared_by: missing") {
			t.Errorf("declared_by %q: %s (%s); want declared_by: missing", blank, cd.State, cd.Reason)
		}
		c = valid()
		c.EndedAt, c.EndedBy = t0.Add(2*time.Hour), blank
		if cd := Decide(cfgWith(c), "pc-01", t0.Add(time.Hour)).Cases[0]; !strings.Contains(cd.Reason, "ended_by: missing") {
			t.Errorf("ended_by %q: %s (%s); want ended_by: missing", blank, cd.State, cd.Reason)
		}
	}
}

func FuzzPerson(f *testing.F) {
	for _, s := range []string{"Anne Berg", "Anne\u200b Berg", "Anne Berg\u0301", "Ａｎｎｅ", "\u202e", "İ", "ß", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := person(s)
		if person(p) != p {
			t.Errorf("person is not idempotent: person(%q) = %q, person of that = %q", s, p, person(p))
		}
		if strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") || strings.Contains(p, "  ") {
			t.Errorf("person(%q) = %q: spaces not collapsed", s, p)
		}
	})
}
