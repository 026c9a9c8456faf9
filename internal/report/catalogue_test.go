package report

import (
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
)

// TestCatalogue: every text exists in both languages with the same verbs.
func TestCatalogue(t *testing.T) {
	for key, texts := range catalogue {
		for _, lang := range Languages {
			s, ok := texts[lang]
			if !ok || strings.TrimSpace(s) == "" {
				t.Errorf("catalogue[%q] has no %s text", key, lang)
				continue
			}
			if n, want := strings.Count(s, "%"), strings.Count(texts["en"], "%"); n != want {
				t.Errorf("catalogue[%q][%s] has %d verbs, English has %d", key, lang, n, want)
			}
		}
	}
	for _, r := range rules {
		for _, k := range []string{"rule." + r.id, "finding." + r.id} {
			if _, ok := catalogue[k]; !ok {
				t.Errorf("rule %s has no text %q", r.id, k)
			}
		}
	}
}

func entriesAt(t time.Time, kinds ...string) []audit.Entry {
	var out []audit.Entry
	for _, k := range kinds {
		out = append(out, audit.Entry{Time: t, Kind: audit.Kind(k)})
	}
	return out
}
