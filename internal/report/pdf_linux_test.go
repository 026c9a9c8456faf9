package report_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/report"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestHTMLPrintsOnA4 renders each report's HTML in headless Chromium to a
// PDF and reads it back with poppler's pdfinfo and pdftotext: every page is
// A4, the pages are numbered "n / N" to the last one, and the text holds
// the title, the PC, the library's name (non-ASCII intact), each finding's
// rule and the last section, so nothing was cut off.
func TestHTMLPrintsOnA4(t *testing.T) {
	chromium := testenv.NeedTool(t, "chromium", "pdfinfo", "pdftotext")
	reps := goldenReports(t)
	// A table that stopped breaking across pages, or a section printed
	// twice, would blow these up.
	maxPages := map[string]int{"review.da": 8, "processing.en": 8, "breach.da": 5}
	for _, name := range []string{"review.da", "processing.en", "breach.da"} {
		t.Run(name, func(t *testing.T) {
			rep := reps[name]
			html, err := report.Render(rep, "html")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			page := filepath.Join(dir, "report.html")
			if err := os.WriteFile(page, html, 0o644); err != nil {
				t.Fatal(err)
			}
			pdf := filepath.Join(dir, "report.pdf")
			cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer",
				"--print-to-pdf="+pdf, "file://"+page)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("chromium: %v\n%s", err, out)
			}
			info := run(t, "pdfinfo", "-f", "1", "-l", "1000", pdf)
			m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindStringSubmatch(info)
			if m == nil {
				t.Fatalf("pdfinfo gives no page count:\n%s", info)
			}
			pages, _ := strconv.Atoi(m[1])
			sizes := regexp.MustCompile(`(?m)^Page +\d+ size:\s+(.*)$`).FindAllStringSubmatch(info, -1)
			if pages < 1 || pages > maxPages[name] || len(sizes) != pages {
				t.Fatalf("pdfinfo: %d pages (at most %d expected), %d page sizes:\n%s", pages, maxPages[name], len(sizes), info)
			}
			for i, s := range sizes {
				if !strings.Contains(s[1], "(A4)") {
					t.Errorf("page %d is %s; want A4", i+1, s[1])
				}
			}
			text := run(t, "pdftotext", "-layout", pdf, "-")
			byPage := strings.Split(text, "\f")
			for i := 1; i <= pages; i++ {
				// pdftotext may drop the thin spaces around the slash.
				if want := strconv.Itoa(i) + "/" + strconv.Itoa(pages); !strings.Contains(strings.ReplaceAll(byPage[i-1], " ", ""), want) {
					t.Errorf("page %d does not say %q", i, want)
				}
			}
			flat := strings.Join(strings.Fields(text), " ")
			wants := []string{"pc-fixture", "Sønderby Bibliotek", firstWords(titleOf(t, rep))}
			for _, f := range findingsOf(rep) {
				wants = append(wants, "["+f.Rule+"]")
			}
			wants = append(wants, lastHeading(t, rep))
			for _, w := range wants {
				if !strings.Contains(flat, w) {
					t.Errorf("the PDF's text lacks %q", w)
				}
			}
			t.Logf("%s: %d A4 pages", name, pages)
		})
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func titleOf(t *testing.T, rep report.Report) string {
	t.Helper()
	b, err := report.Render(rep, "text")
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitN(string(b), "\n", 2)[0]
}

// firstWords is the start of a title, which a PDF may wrap over lines.
func firstWords(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(4, len(f))], " ")
}

// lastHeading is the last section's heading in the text rendering.
func lastHeading(t *testing.T, rep report.Report) string {
	t.Helper()
	b, err := report.Render(rep, "text")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i > 0; i-- {
		if strings.HasPrefix(lines[i], "---") && strings.Trim(lines[i], "-") == "" {
			return strings.TrimSpace(lines[i-1])
		}
	}
	t.Fatal("no section heading in the text rendering")
	return ""
}

func findingsOf(rep report.Report) []report.Finding {
	switch r := rep.(type) {
	case *report.Review:
		return r.Findings
	case *report.Processing:
		return r.Findings
	}
	return nil
}
