package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidCaseID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"2026-03", true},
		{"a", true},
		{"A.b_c-9", true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{"", false},
		{"-lead", false},
		{".hidden", false},
		{"#2", false}, // how messages name an unnamed case: never a real id
		{"has space", false},
		{"a/b", false},
		{`a\b`, false},
		{"a:b", false},
		{"käse", false},
		{"a\x00", false},
		{"a\n", false},
	} {
		if got := ValidCaseID(tc.id); got != tc.want {
			t.Errorf("ValidCaseID(%q) = %v; want %v", tc.id, got, tc.want)
		}
		if got := ValidPCID(tc.id); got != tc.want {
			t.Errorf("ValidPCID(%q) = %v; want %v", tc.id, got, tc.want)
		}
	}
}

func TestCaseEffectiveEnd(t *testing.T) {
	end := time.Date(2026, 3, 21, 19, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		endedAt time.Time
		want    time.Time
	}{
		{"no ended_at", time.Time{}, end},
		{"ended early", end.Add(-48 * time.Hour), end.Add(-48 * time.Hour)},
		{"ended_at equal to end", end, end},
		{"ended_at after end", end.Add(time.Hour), end},
	} {
		c := Case{End: end, EndedAt: tc.endedAt}
		if got := c.EffectiveEnd(); !got.Equal(tc.want) {
			t.Errorf("%s: EffectiveEnd() = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestCaseCovers(t *testing.T) {
	for _, tc := range []struct {
		pcs  []string
		pc   string
		want bool
	}{
		{[]string{"pc-01", "pc-02"}, "pc-02", true},
		{[]string{"pc-01"}, "pc-02", false},
		{[]string{"*"}, "pc-02", true},
		{[]string{"pc-01", "*"}, "anything", true},
		{nil, "pc-01", false},
		{[]string{"PC-01"}, "pc-01", false}, // ids are exact, as in file names
		{[]string{"pc-*"}, "pc-01", false},  // no patterns
	} {
		if got := (Case{PCs: tc.pcs}).Covers(tc.pc); got != tc.want {
			t.Errorf("Case{PCs: %q}.Covers(%q) = %v; want %v", tc.pcs, tc.pc, got, tc.want)
		}
	}
}
