package seal_test

import (
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/seal"
)

func TestParseName(t *testing.T) {
	opened := time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.UTC)
	for _, c := range []struct {
		in   string
		want seal.Name
		err  string
	}{
		{"case-7-20240501T120000.123Z-00000042.jsonl.age", seal.Name{Case: "case-7", Opened: opened, Seq: 42, Format: seal.JSONL}, ""},
		{"a.b_c-20240501T120000.123Z-99999999.pcapng.age", seal.Name{Case: "a.b_c", Opened: opened, Seq: 99999999, Format: seal.PCAPNG}, ""},
		{"x-20240501T120000.123Z-00000001.jsonl.age.partial", seal.Name{}, "does not end in .age"},
		{"x-20240501T120000.123Z-00000001.pcap.age", seal.Name{}, "neither jsonl nor pcapng"},
		{"x-20240501T120000.123Z-0000001.jsonl.age", seal.Name{}, "not 8 digits"},
		{"x-20240501T120000.123Z-+0000001.jsonl.age", seal.Name{}, "not a number"},
		{"x-20240501T120000Z-00000001.jsonl.age", seal.Name{}, "time is not"},
		{"x-20241301T120000.123Z-00000001.jsonl.age", seal.Name{}, "time is not"},
		{"20240501T120000.123Z-00000001.jsonl.age", seal.Name{}, "has no time"},
		{"../x-20240501T120000.123Z-00000001.jsonl.age", seal.Name{}, "case id"},
		{"-20240501T120000.123Z-00000001.jsonl.age", seal.Name{}, "case id"},
		{"jsonl.age", seal.Name{}, "has no format"},
		{"", seal.Name{}, "does not end in .age"},
	} {
		got, err := seal.ParseName(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseName(%q) = %+v, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Case != c.want.Case || !got.Opened.Equal(c.want.Opened) || got.Seq != c.want.Seq || got.Format != c.want.Format {
			t.Errorf("ParseName(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if got.String() != c.in {
			t.Errorf("ParseName(%q).String() = %q; want the input", c.in, got.String())
		}
	}
}

func FuzzParseName(f *testing.F) {
	f.Add("case-7-20240501T120000.123Z-00000042.jsonl.age")
	f.Add("a-20240501T120000.000Z-00000001.pcapng.age")
	f.Add("../../etc/passwd")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := seal.ParseName(s)
		if err != nil {
			return
		}
		// Properties: a parsed name is canonical (round-trips) and can never
		// leave the traffic folder.
		if n.String() != s {
			t.Fatalf("ParseName(%q).String() = %q", s, n.String())
		}
		if strings.ContainsAny(s, `/\:`) || strings.HasPrefix(s, ".") {
			t.Fatalf("ParseName accepted %q, which is not a plain file name", s)
		}
	})
}
