package audit

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

func TestQuery(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	fill(t, l, 20, 0)
	all, err := l.Entries(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 21 {
		t.Fatalf("Entries(all) = %d entries; want 21", len(all))
	}
	// want computes the expected result by filtering all entries in Go.
	want := func(keep func(Entry) bool) []int64 {
		var out []int64
		for _, e := range all {
			if keep(e) {
				out = append(out, e.Seq)
			}
		}
		return out
	}
	hasField := func(e Entry, k, v string) bool {
		return slices.ContainsFunc(e.Fields, func(f Field) bool { return f.Key == k && f.Value == v })
	}
	since, until := all[5].Time, all[12].Time
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"window", Query{Since: since, Until: until}, want(func(e Entry) bool { return !e.Time.Before(since) && e.Time.Before(until) })},
		{"kind", Query{Kinds: []Kind{CaptureStart}}, want(func(e Entry) bool { return e.Kind == CaptureStart })},
		{"two kinds", Query{Kinds: []Kind{CaptureStart, KeyCreated}}, want(func(e Entry) bool { return e.Kind == CaptureStart || e.Kind == KeyCreated })},
		{"field", Query{Fields: map[string]string{"case": "2026-03"}}, want(func(e Entry) bool { return hasField(e, "case", "2026-03") })},
		{"two fields", Query{Fields: map[string]string{"case": "2026-03", "interface": "eth0"}}, want(func(e Entry) bool { return hasField(e, "case", "2026-03") })},
		{"field no match", Query{Fields: map[string]string{"case": "2026-04"}}, nil},
		{"kind and since", Query{Kinds: []Kind{ServiceStart}, Since: since}, want(func(e Entry) bool { return e.Kind == ServiceStart && !e.Time.Before(since) })},
		{"from and limit", Query{From: 4, Limit: 3}, []int64{4, 5, 6}},
		{"limit", Query{Limit: 2}, []int64{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := l.Entries(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range es {
				got = append(got, e.Seq)
				// Fields come back whole, not only the matched ones.
				if len(e.Fields) != len(all[e.Seq].Fields) {
					t.Errorf("entry %d has %d fields; want %d", e.Seq, len(e.Fields), len(all[e.Seq].Fields))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Entries(%+v) = %v; want %v", tt.q, got, tt.want)
			}
		})
	}
	if len(want(func(e Entry) bool { return e.Kind == CaptureStart })) == 0 {
		t.Fatal("the sample has no capture.start entries; the kind cases prove nothing")
	}
	e, err := l.Entry(ctx, 7)
	if err != nil || e.Seq != 7 || e.Kind != all[7].Kind {
		t.Errorf("Entry(7) = %+v, %v; want entry 7", e, err)
	}
	if _, err := l.Entry(ctx, 99); err == nil {
		t.Errorf("Entry(99) = nil error; want one")
	}
}
