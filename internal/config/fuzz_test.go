package config

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the config parser: the file is outside
// input written by hand on many PCs. Properties: no panic; every failure is
// a Problems list whose entries name a key; a config accepted without
// error also passes Validate; case problems always belong to a case.
func FuzzParse(f *testing.F) {
	f.Add(Example(""))
	f.Add(Example("/tmp/carrel"))
	f.Add([]byte(base))
	f.Add([]byte(base + "[[case]]\nid = \"x\"\nstart = 2026-03-01\npcs = \"a\"\nsnaplen = 10\n"))
	f.Add([]byte("version = 1\n[booking]\nretention = \"9999999999d\"\n"))
	f.Add([]byte("version = 1\n[capture]\nmax_bytes = \"99999999999TiB\"\n"))
	f.Add([]byte("version = 1\n[[case]]\nend = 2026-03-01T09:00:00\n[[case]]\n"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error %v is not a non-empty Problems", err)
			}
			for _, p := range ps {
				if p.Key == "" || p.Msg == "" {
					t.Fatalf("problem without key or message: %+v", p)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", err)
		}
		for _, k := range c.Cases {
			for _, p := range k.Problems {
				if p.Key == "" {
					t.Fatalf("case problem without key: %+v", p)
				}
			}
		}
	})
}
