package seal_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// G3: the traffic store never sees bookings, and it is not the exporter.
// seal may use audit; it must not import booking, capture or export.
func TestSealImportsNoBookingCaptureOrExport(t *testing.T) {
	gobin := testenv.NeedTool(t, "go")
	out, err := exec.Command(gobin, "list", "-deps", "github.com/carrel-lib/carrel/internal/seal").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/internal/booking", "/internal/capture", "/internal/export"} {
			if strings.HasSuffix(dep, banned) || strings.Contains(dep, banned+"/") {
				t.Errorf("seal depends on %s", dep)
			}
		}
	}
}

// G4: the PC cannot read back what it captured. No non-test file of seal
// calls anything that decrypts.
func TestSealNeverDecrypts(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, call := range []string{"age.Decrypt", "DecryptReaderAt", "DecryptHeader", ".Unwrap(", "armor.NewReader"} {
			if strings.Contains(string(src), call) {
				t.Errorf("%s uses %s: seal must not decrypt", f, call)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d source files; want the package's files", checked)
	}
}
