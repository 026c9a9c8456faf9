package misuse_test

import (
	"go/ast"
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// TestOnlyControllerStartsCapture walks every package linked into the
// carrel binary, resolves every call with the type checker, and requires
// that capture.Engine.Start is called in exactly one place: the
// Controller's start method, which runs only after Decide said capture may
// run. A new caller anywhere — a debug command, a shortcut in the daemon —
// fails this test.
func TestOnlyControllerStartsCapture(t *testing.T) {
	const mod = "github.com/carrel-lib/carrel/"
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
		packages.NeedTypes | packages.NeedTypesInfo | packages.NeedDeps | packages.NeedImports}
	roots, err := packages.Load(cfg, mod+"cmd/carrel")
	if err != nil {
		t.Fatal(err)
	}
	if packages.PrintErrors(roots) > 0 {
		t.Fatal("packages failed to load")
	}
	var callers []string
	seen := 0
	packages.Visit(roots, nil, func(p *packages.Package) {
		if !strings.HasPrefix(p.PkgPath, mod) {
			return
		}
		seen++
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				fd, ok := n.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					return true
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					fn, ok := p.TypesInfo.Uses[sel.Sel].(*types.Func)
					if !ok || fn.Name() != "Start" || fn.Pkg() == nil || fn.Pkg().Path() != mod+"internal/capture" {
						return true
					}
					recv := fn.Type().(*types.Signature).Recv()
					if recv == nil || !strings.HasSuffix(recv.Type().String(), "capture.Engine") {
						return true
					}
					callers = append(callers, p.PkgPath+"."+funcName(fd)+" at "+p.Fset.Position(call.Pos()).String())
					return true
				})
				return false
			})
		}
	})
	if seen < 8 {
		t.Fatalf("visited only %d carrel packages; the walk is broken", seen)
	}
	if len(callers) != 1 || !strings.HasPrefix(callers[0], mod+"internal/misuse.(*Controller).start at ") {
		t.Errorf("capture.Engine.Start is called from %v; want exactly one call, in internal/misuse.(*Controller).start", callers)
	}
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	var recv string
	switch x := fd.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		recv = "(*" + x.X.(*ast.Ident).Name + ")"
	case *ast.Ident:
		recv = x.Name
	}
	return recv + "." + fd.Name.Name
}
