// Package internal_test checks the layering that guarantee G3 rests on:
// bookings and traffic live in packages that never import each other, and
// only the court-order export reads both.
package internal_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/carrel-lib/carrel/"

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// traffic are the packages that capture, hold or read network traffic.
var traffic = []string{"internal/capture", "internal/seal"}

func TestBookingsAndTrafficNeverMeet(t *testing.T) {
	pkgs := listPackages(t)
	forbidden := map[string][]string{
		// The booking register and its API know nothing about traffic,
		// not even in tests.
		"internal/booking": append(traffic, "internal/export", "internal/misuse", "internal/daemon"),
		"internal/api":     append(traffic, "internal/export", "internal/misuse"),
		// Traffic code knows nothing about bookings.
		"internal/capture": {"internal/booking", "internal/api", "internal/seal", "internal/export"},
		"internal/seal":    {"internal/booking", "internal/api", "internal/capture", "internal/export"},
		// The audit log is below everything: it imports none of them.
		"internal/audit": {"internal/booking", "internal/api", "internal/capture", "internal/seal", "internal/export", "internal/misuse"},
		// Opening SQLite files is below everything, even the audit log.
		"internal/sqlitedb": {"internal/booking", "internal/api", "internal/audit", "internal/capture",
			"internal/seal", "internal/export", "internal/misuse", "internal/config", "internal/daemon"},
		// The misuse controller runs capture and never sees a booking.
		"internal/misuse": {"internal/booking", "internal/api", "internal/daemon", "internal/export"},
	}
	for from, bans := range forbidden {
		p, ok := pkgs[from]
		if !ok {
			t.Errorf("package %s not found", from)
			continue
		}
		deps := transitive(t, from)
		for _, ban := range bans {
			if slices.Contains(deps, mod+ban) {
				t.Errorf("%s depends on %s (directly or through another package)", from, ban)
			}
			for _, imp := range append(p.TestImports, p.XTestImports...) {
				// seal's tests check that its Writer satisfies capture.Sink.
				if from == "internal/seal" && ban == "internal/capture" {
					continue
				}
				if imp == mod+ban {
					t.Errorf("tests of %s import %s", from, ban)
				}
			}
		}
	}
}

// TestOnlyExportReadsBoth: no package but export imports both the booking
// register and a traffic package. The daemon wires bookings, and hands
// traffic to package misuse, so it never holds both itself.
func TestOnlyExportReadsBoth(t *testing.T) {
	pkgs := listPackages(t)
	for name, p := range pkgs {
		if name == "internal/export" {
			continue
		}
		imports := append(append([]string(nil), p.Imports...), p.TestImports...)
		if !slices.Contains(imports, mod+"internal/booking") {
			continue
		}
		for _, tr := range traffic {
			if slices.Contains(imports, mod+tr) {
				t.Errorf("%s imports both internal/booking and %s; only internal/export may", name, tr)
			}
		}
	}
}

func transitive(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+path).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", path, err)
	}
	return strings.Fields(string(out))
}
