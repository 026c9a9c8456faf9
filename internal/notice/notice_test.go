package notice

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the golden files are in Europe/Copenhagen time on any machine

	"github.com/carrel-lib/carrel/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture() Input {
	cph, _ := time.LoadLocation("Europe/Copenhagen")
	return Input{
		Case: config.Case{
			ID: "2026-03", Reason: "Jens Hansen looked at illegal images", Category: "illegal-content",
			DeclaredBy: "Anne Berg", ApprovedBy: "Bo Dahl",
			NoticePostedAt: time.Date(2026, 3, 1, 7, 30, 0, 0, time.UTC),
			Start:          time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC),
			End:            time.Date(2026, 3, 21, 19, 0, 0, 0, time.UTC),
			PCs:            []string{"pc-01", "pc-02"}, Mode: config.ModeMetadata,
		},
		Library: config.Library{
			Name: "Hovedbiblioteket", Responsible: "Bibliotekschef Karen Holm",
			Contact: "Skranken i stueetagen, bibliotek@example.dk", Rules: "https://bibliotek.example.dk/regler",
		},
		Retention: 30 * 24 * time.Hour,
		Location:  cph,
	}
}

func TestGolden(t *testing.T) {
	for _, lang := range Languages {
		for _, format := range Formats {
			got, err := Render(fixture(), lang, format)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "notice."+lang+"."+format)
			if *update {
				os.WriteFile(path, got, 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render(%s, %s) differs from %s:\n%s", lang, format, path, got)
			}
		}
	}
}

// TestNothingPersonal: the free-text reason and staff names never reach a
// notice that hangs in public.
func TestNothingPersonal(t *testing.T) {
	for _, lang := range Languages {
		for _, format := range Formats {
			got, _ := Render(fixture(), lang, format)
			for _, secret := range []string{"Jens Hansen", "illegal images", "Anne Berg", "Bo Dahl"} {
				if bytes.Contains(got, []byte(secret)) {
					t.Errorf("Render(%s, %s) contains %q", lang, format, secret)
				}
			}
		}
	}
}

func TestContent(t *testing.T) {
	in := fixture()
	en, _ := Render(in, "en", "text")
	da, _ := Render(in, "da", "text")
	for _, want := range []string{
		"from 1 March 2026, 09:00 to 21 March 2026, 20:00", // local time, Copenhagen
		"PCs: pc-01, pc-02", "Kept for: The log is deleted 30 days after",
		"Responsible: Bibliotekschef Karen Holm, Hovedbiblioteket", "https://bibliotek.example.dk/regler",
		"viewing of illegal content", "Case 2026-03 · notice posted 1 March 2026, 08:30",
	} {
		if !strings.Contains(string(en), want) {
			t.Errorf("English notice lacks %q", want)
		}
	}
	for _, want := range []string{"fra 1. marts 2026 kl. 09.00 til 21. marts 2026 kl. 20.00", "Opbevaring: Loggen slettes 30 dage", "visning af ulovligt indhold"} {
		if !strings.Contains(string(da), want) {
			t.Errorf("Danish notice lacks %q", want)
		}
	}

	in.Case.Mode, in.Case.Snaplen, in.Case.PCs = config.ModePackets, 256, []string{"*"}
	in.Case.EndedAt = time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)
	in.Library = config.Library{Name: `<script>alert(1)</script>`}
	en, _ = Render(in, "en", "text")
	for _, want := range []string{"the first 256 bytes of each", "all of the library's public PCs", "to 10 March 2026, 12:00", "Questions: (not set)"} {
		if !strings.Contains(string(en), want) {
			t.Errorf("packets notice lacks %q:\n%s", want, en)
		}
	}
	h, _ := Render(in, "en", "html")
	if bytes.Contains(h, []byte("<script>")) {
		t.Error("HTML notice does not escape the library name")
	}

	if _, err := Render(in, "de", "text"); err == nil || !strings.Contains(err.Error(), "da, en") {
		t.Errorf("Render(de) = %v; want an error listing da, en", err)
	}
	if _, err := Render(in, "en", "pdf"); err == nil {
		t.Error("Render(pdf) = nil error")
	}
}
