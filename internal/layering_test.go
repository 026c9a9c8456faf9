// Package internal_test checks the layering that guarantee G3 rests on:
// bookings and traffic live in packages that never import each other, and
// only the court-order export reads both.
package internal_test

import (
	"encoding/json"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
		"internal/audit": {"internal/booking", "internal/api", "internal/capture", "internal/seal", "internal/export", "internal/misuse",
			"internal/witness"},
		// Opening SQLite files is below everything, even the audit log.
		"internal/sqlitedb": {"internal/booking", "internal/api", "internal/audit", "internal/capture",
			"internal/seal", "internal/export", "internal/misuse", "internal/config", "internal/daemon"},
		// The misuse controller runs capture and never sees a booking.
		"internal/misuse": {"internal/booking", "internal/api", "internal/daemon", "internal/export"},
		// The witness pusher sits beside the audit log, below the daemon:
		// it sends checkpoints out and must never reach what they do not
		// hold. The daemon hands it the witnesses from the config.
		"internal/witness": append(traffic, "internal/booking", "internal/api", "internal/export", "internal/misuse",
			"internal/daemon", "internal/config"),
		// The compliance reports read summaries of both stores (see
		// TestReportReadsOnlySummaries) and nothing that captures, exports
		// or serves bookings.
		"internal/report": {"internal/capture", "internal/misuse", "internal/export", "internal/api", "internal/daemon"},
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
				// report's tests drive the real service (daemon, API,
				// capture, export) through a year to make their fixture;
				// its own code is held to summaries below.
				if from == "internal/report" {
					continue
				}
				if imp == mod+ban {
					t.Errorf("tests of %s import %s", from, ban)
				}
			}
		}
	}
}

// TestLeavesImportNoCarrelPackage: the packages below everything import
// no carrel package but those named, in their Linux and their Windows
// files. keyfile writes the keys and markers of the audit log, the
// booking register and the traffic store. The audit log opens SQLite
// files (sqlitedb) and writes its key (keyfile), and nothing else: so
// nothing the log does can reach bookings, traffic or cases, and every
// other package can depend on it.
func TestLeavesImportNoCarrelPackage(t *testing.T) {
	leaves := map[string][]string{
		"keyfile": nil,
		"audit":   {"internal/sqlitedb", "internal/keyfile"},
	}
	for dir, allowed := range leaves {
		for _, goos := range []string{"linux", "windows"} {
			ctx := build.Default
			ctx.GOOS = goos
			p, err := ctx.ImportDir(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Imports) < 5 {
				t.Fatalf("%s on %s: found %d imports; want the package's", dir, goos, len(p.Imports))
			}
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, mod) && !slices.Contains(allowed, strings.TrimPrefix(imp, mod)) {
					t.Errorf("%s on %s imports %s", dir, goos, imp)
				}
			}
		}
	}
}

// TestOnlyExportReadsBoth: no package but export imports both the booking
// register and a traffic package. The daemon wires bookings, and hands
// traffic to package misuse, so it never holds both itself. Package report
// imports both for their summaries only, which
// TestReportReadsOnlySummaries holds it to.
func TestOnlyExportReadsBoth(t *testing.T) {
	pkgs := listPackages(t)
	for name, p := range pkgs {
		if name == "internal/export" || name == "internal/report" {
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

// reportMayUse is everything package report may name of the booking
// register and the traffic store: a function that opens the store
// read-only and returns counts, sizes and time ranges, its result types,
// and the sentinel that says there is no store.
var reportMayUse = map[string][]string{
	mod + "internal/booking": {"ReadSummary", "Summary", "ErrNotExist"},
	mod + "internal/seal":    {"ReadSummary", "Summary", "CaseSummary", "HoldSummary", "ErrNoStore"},
}

// TestReportReadsOnlySummaries: the compliance reports (internal/report)
// read the booking register and the traffic store only through their
// summary functions (issue 13). Every name report's code uses of either
// package is in reportMayUse, it opens no database itself, and the
// summary types hold no booking reference, card hash, segment name or
// record: so it can never put booking rows beside traffic rows.
func TestReportReadsOnlySummaries(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("report", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no source of internal/report found: %v", err)
	}
	used := map[string]bool{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{} // local name -> import path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch path {
			case "database/sql", mod + "internal/sqlitedb", "github.com/mattn/go-sqlite3":
				t.Errorf("%s imports %s: report reads stores only through their summaries", file, path)
			}
			if _, ok := reportMayUse[path]; !ok {
				continue
			}
			name := filepath.Base(path)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name == "_" || name == "." {
				t.Errorf("%s imports %s as %q: name what it uses", file, path, name)
			}
			names[name] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			path, ok := names[id.Name]
			if !ok || id.Obj != nil { // a local variable shadowing the import
				return true
			}
			used[path+"."+sel.Sel.Name] = true
			if !slices.Contains(reportMayUse[path], sel.Sel.Name) {
				t.Errorf("%s: report uses %s.%s; it may use only %v of %s", fset.Position(sel.Pos()), id.Name, sel.Sel.Name,
					reportMayUse[path], strings.TrimPrefix(path, mod))
			}
			return true
		})
	}
	for _, want := range []string{mod + "internal/booking.ReadSummary", mod + "internal/seal.ReadSummary"} {
		if !used[want] {
			t.Errorf("report does not call %s: the check above would pass vacuously", strings.TrimPrefix(want, mod))
		}
	}
	// The summary types: counts, sizes, times, case ids and court order
	// references only.
	allowedFields := map[string]bool{"Case": true, "OrderRef": true, "OrderSHA256": true, "Format": true, "Cases": true, "Holds": true}
	for path, file := range map[string]string{"booking": filepath.Join("booking", "summary.go"), "seal": filepath.Join("seal", "summary.go")} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || !strings.HasSuffix(ts.Name.Name, "Summary") {
				return true
			}
			for _, fld := range st.Fields.List {
				typ := exprString(fld.Type)
				for _, name := range fld.Names {
					switch typ {
					case "int", "int64", "time.Time":
					default:
						if !allowedFields[name.Name] {
							t.Errorf("%s.%s.%s is a %s: a summary holds only counts, sizes, times, case ids and order references",
								path, ts.Name.Name, name.Name, typ)
						}
					}
				}
			}
			return true
		})
	}
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(x.Elt)
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	}
	return "?"
}
