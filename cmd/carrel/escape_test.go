package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Names that could paint a terminal: an escape sequence that clears the
// line and writes a fake verdict, a carriage return, a newline, invalid
// UTF-8, a right-to-left override.
var hostileNames = []string{
	"\x1b[2K\x1b[1Gbundle verifies: order X",
	"cr\rbundle verifies",
	"nl\nbundle verifies: order X",
	"bad\xff\xfeutf8",
	"rtl\u202etxt.exe",
}

// assertInert fails if out holds anything a terminal would act on: a
// control character other than newline and tab, DEL, a C1 control, a
// Unicode format character, or bytes that are not UTF-8.
func assertInert(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s printed bytes that are not UTF-8: %q", what, out)
		return
	}
	for _, r := range out {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s printed %U raw: %q", what, r, out)
			return
		}
	}
}

// TestOutsideNamesAreEscaped (issue 10, item 13): file names in a bag, the
// bundle's folder, an --out or --identity path, and the generic error
// printer never reach the terminal raw.
func TestOutsideNamesAreEscaped(t *testing.T) {
	dir, cfg, key := exportFixture(t)
	bundle := filepath.Join(dir, "bundle")
	if out, code := carrelRun(t, "export", "--config", cfg, "--order", "R-1", "--court", "C", "--requester", "P",
		"--exporter", "E", "--from", "2026-03-02T10:00:00Z", "--to", "2026-03-02T12:00:00Z", "--identity", key, "--out", bundle); code != 0 {
		t.Fatalf("export: %d\n%s", code, out)
	}
	for i, name := range hostileNames {
		// In the payload, at the top, and as the bundle's own folder.
		for _, rel := range []string{filepath.Join("data", name), name} {
			p := filepath.Join(bundle, rel)
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := carrelRun(t, "export", "verify", bundle)
			if code != 1 || !strings.Contains(out, "a file added after the export") && !strings.Contains(out, "is not UTF-8") {
				t.Errorf("export verify with %q added = %d\n%s", rel, code, out)
			}
			assertInert(t, "export verify", out)
			os.Remove(p)
		}
		odd := filepath.Join(dir, "copy-"+name)
		if err := os.Rename(bundle, odd); err != nil {
			t.Fatal(err)
		}
		out, code := carrelRun(t, "export", "verify", odd)
		if code != 0 {
			t.Errorf("export verify of a folder named %q = %d\n%s", odd, code, out)
		}
		assertInert(t, "export verify", out)
		os.Rename(odd, bundle)

		out, _ = carrelRun(t, "export", "verify", filepath.Join(dir, "missing-"+name))
		assertInert(t, "export verify of a missing folder", out)
		out, _ = carrelRun(t, "export", "--config", cfg, "--order", "R-2", "--court", "C", "--requester", "P",
			"--exporter", "E", "--from", "2026-03-02T10:00:00Z", "--to", "2026-03-02T12:00:00Z", "--identity", key,
			"--out", filepath.Join(dir, "out-"+name))
		assertInert(t, "export", out)
		out, _ = carrelRun(t, "export", "--config", cfg, "--order", "R-3", "--court", "C", "--requester", "P",
			"--exporter", "E", "--from", "2026-03-02T10:00:00Z", "--to", "2026-03-02T12:00:00Z", "--identity", filepath.Join(dir, "key-"+name),
			"--out", filepath.Join(dir, "x"))
		assertInert(t, "export with a missing identity", out)
		out, _ = carrelRun(t, "keygen", "--out", filepath.Join(dir, "keygen-"+name+"-"+string(rune('a'+i))))
		assertInert(t, "keygen", out)
		out, _ = carrelRun(t, "audit", "verify", "--db", filepath.Join(dir, "db-"+name))
		assertInert(t, "audit verify", out)
		out, _ = carrelRun(t, name)
		assertInert(t, "an unknown command", out)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, æøå":       "plain text, æøå",
		"two\nlines\tand tab":   "two\nlines\tand tab",
		"esc\x1b[2J":            `esc\x1b[2J`,
		"cr\r":                  `cr\x0d`,
		"del\x7f":               `del\x7f`,
		"c1\u009b31m":           `c1\u009b31m`,
		"bad\xff":               `bad\xff`,
		"rtl\u202e":             `rtl\u202e`,
		"replacement \uFFFD ok": "replacement \uFFFD ok",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q; want %q", in, got, want)
		}
	}
}
