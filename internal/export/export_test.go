package export

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func loadIDs(t testing.TB, path string) []age.Identity {
	t.Helper()
	keys, err := seal.LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	return identities(keys)
}

// TestExportGolden exports the standard fixture, verifies the bundle with
// the identity, and compares everything in it that does not depend on
// random keys with testdata/bag.golden: the file list with sizes,
// bag-info.txt, the bookings, the decrypted records, custody.json (digests
// masked) and which audit entries were included.
func TestExportGolden(t *testing.T) {
	f := standard(t)
	out := filepath.Join(f.root, "bundle")
	res, err := f.export(f.options(out))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyDir(out, VerifyOptions{Identities: loadIDs(t, f.identity)})
	if err != nil {
		t.Fatalf("VerifyDir = %v; want a bundle that verifies", err)
	}
	if !rep.Decrypted || rep.Segments != 3 || rep.Files != res.Files || rep.Bytes != res.Bytes || rep.Order != "RET-2026-0042" {
		t.Errorf("VerifyDir report = %+v; export result = %+v", rep, res)
	}
	if res.Bookings != 4 || res.Segments != 3 || res.InWindow != 3+2+2 {
		t.Errorf("Run = %d bookings, %d segments, %d in window; want 4, 3, 7", res.Bookings, res.Segments, res.InWindow)
	}
	got := goldenView(t, out)
	golden := filepath.Join("testdata", "bag.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestExportGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("bundle differs from %s (go test -update rewrites it after a deliberate change):\n%s", golden, lineDiff(string(want), string(got)))
	}
}

var (
	hexDigest  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	oxumOctets = regexp.MustCompile(`Payload-Oxum: [0-9]+\.`)
)

// goldenView renders the deterministic parts of a bundle.
func goldenView(t *testing.T, dir string) []byte {
	t.Helper()
	files := readTree(t, dir)
	var b bytes.Buffer
	// The config holds the fixture's temporary path, whose length varies:
	// its size, and so the payload's, are masked.
	b.WriteString("== files\n")
	for _, p := range sortedKeys(files) {
		if p == configFile {
			fmt.Fprintf(&b, "%8s %s\n", "<var>", p)
			continue
		}
		fmt.Fprintf(&b, "%8d %s\n", len(files[p]), p)
	}
	files["bag-info.txt"] = oxumOctets.ReplaceAll(files["bag-info.txt"], []byte("Payload-Oxum: <octets>."))
	for _, p := range sortedKeys(files) {
		switch {
		case p == "bagit.txt", p == "bag-info.txt", p == bookingsCSV,
			strings.HasSuffix(p, ".jsonl"), strings.HasSuffix(p, ".csv"):
			fmt.Fprintf(&b, "== %s\n%s", p, files[p])
		case p == custodyFile:
			fmt.Fprintf(&b, "== %s (digests masked)\n%s", p, hexDigest.ReplaceAll(files[p], []byte("<sha256>")))
		case strings.HasSuffix(p, ".entry"):
			e, err := audit.ParseEntry(files[p])
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "== %s: %s", p, e.Kind)
			for _, fl := range e.Fields {
				switch {
				case fl.Type == audit.TypeHash:
				case e.Kind == audit.ExportEnd && fl.Key == "bytes": // the config's size is in it
					fmt.Fprintf(&b, " %s=<var>", fl.Key)
				default:
					fmt.Fprintf(&b, " %s=%s", fl.Key, fl.Value)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
