package misuse

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// person reduces a name to what tells people apart for the four-eyes rule
// (approved_by must be a second person) and for "who ended the case". Two
// spellings that a reader of the config cannot tell apart are one person:
//
//   - compatibility forms are folded (NFKD): full-width letters, ligatures,
//     no-break and other spaces;
//   - combining marks are dropped, so "Anne Berg\u0301" is no second Anne
//     Berg. Names that differ only in accents ("Jose", "José") therefore
//     count as one person: the rule errs towards refusing a case, never
//     towards accepting a second approver who may not exist;
//   - format and other invisible characters are dropped: zero-width space
//     and joiners, direction marks and embeddings, soft hyphen, byte-order
//     mark, variation selectors, fillers;
//   - case is folded (Unicode full case folding: "STRAUSS" is "Strauß");
//   - runs of white space become one space, and the ends are trimmed.
//
// A name that is empty after this is missing. Letters that only look alike
// across scripts (Latin "a", Cyrillic "а") stay different: telling them
// apart needs the confusables data of UTS #39, which x/text does not carry.
func person(s string) string {
	s = visible(norm.NFKD.String(s))
	// Folding can produce new decomposable letters ("İ" folds to "i" and a
	// combining dot): decompose and strip once more.
	s = visible(norm.NFKD.String(cases.Fold().String(s)))
	return strings.Join(strings.Fields(norm.NFC.String(s)), " ")
}

// visible drops the runes that do not show, or only change how the rune
// before them shows, and turns every kind of space into ' '.
func visible(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Cc, unicode.Co,
			unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector),
			r == unicode.ReplacementChar:
			continue
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
