package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse feeds arbitrary bytes to the config parser: the file is outside
// input written by hand on many PCs. Properties: no panic; every failure is
// a Problems list whose entries name a key (quoted when it holds control
// characters, so it cannot paint a terminal) and, when they give a line,
// one that is in the file; a config accepted without error also passes
// Validate; case problems always belong to a case.
func FuzzParse(f *testing.F) {
	f.Add(Example(""))
	f.Add(Example("/tmp/carrel"))
	f.Add([]byte(base))
	f.Add([]byte(base + "[[case]]\nid = \"x\"\nstart = 2026-03-01\npcs = \"a\"\nsnaplen = 10\n"))
	f.Add([]byte("version = 1\n[booking]\nretention = \"9999999999d\"\n"))
	f.Add([]byte("version = 1\n[capture]\nmax_bytes = \"99999999999TiB\"\n"))
	f.Add([]byte("version = 1\n[[case]]\nend = 2026-03-01T09:00:00\n[[case]]\n"))
	f.Add([]byte("\xff\xfe"))
	f.Add([]byte("[booking]\nretention = \"forever and ever\"\nnonsense_key = 1\n"))
	f.Add([]byte("version = 1\npc = 5\ncase = 7\n[capture]\nrecipients = [1, \"x\"]\nmax_bytes = -1\n"))
	f.Add([]byte("version = 1\npc.id = \"a\"\nbooking = {retention = \"640512d\"}\n[audit.x]\ny = 1\n"))
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
				if strings.ContainsFunc(p.Key, unicode.IsControl) {
					t.Fatalf("problem key holds a control character: %q", p.Key)
				}
				if p.Line < 0 || p.Line > bytes.Count(data, []byte("\n"))+1 {
					t.Fatalf("problem %q names line %d of a file of %d lines", p.Key, p.Line, bytes.Count(data, []byte("\n"))+1)
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
