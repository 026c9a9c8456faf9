package report_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata/golden")

// goldenReports builds every report of the fixture in every language.
func goldenReports(t *testing.T) map[string]report.Report {
	t.Helper()
	f := facts(t)
	out := map[string]report.Report{}
	for _, lang := range report.Languages {
		out["review."+lang] = report.BuildReview(f, period, lang, copenhagen)
		out["processing."+lang] = report.BuildProcessing(f, lang, copenhagen)
		out["breach."+lang] = report.BuildBreach(f, madeAt.Add(-30*24*time.Hour), lang, copenhagen)
	}
	return out
}

// TestGolden compares every report, format and language made from the
// scripted year with testdata/golden. Run with -update after an intended
// change, and read the diff.
func TestGolden(t *testing.T) {
	f := facts(t)
	ext := map[string]string{"text": "txt", "html": "html", "json": "json"}
	for name, rep := range goldenReports(t) {
		for _, format := range report.Formats {
			file := filepath.Join("testdata", "golden", name+"."+ext[format])
			t.Run(filepath.Base(file), func(t *testing.T) {
				b, err := report.Render(rep, format)
				if err != nil {
					t.Fatal(err)
				}
				got := normalise(t, f, b)
				if *update {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				if string(got) != string(want) {
					t.Errorf("%s differs (rerun with -update if intended):\n%s", file, firstDiff(string(want), string(got)))
				}
			})
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return ""
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i))
}

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
