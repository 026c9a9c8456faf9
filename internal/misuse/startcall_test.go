package misuse_test

import (
	"go/ast"
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// TestOnlyControllerStartsCapture walks every package linked into the
// carrel binary, resolves every reference to a method with the type
// checker, and requires that the capture engine's Start is reached from
// exactly one place: the Controller's start method, which runs only after
// Decide said capture may run. A reference is a call, a method value or a
// method expression, of capture.Engine's Start itself or of Start on any
// interface that *capture.Engine implements (such as misuse.Engine, which
// the controller calls). A new caller anywhere — a debug command, a
// shortcut in the daemon, an interface of its own — fails this test.
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
	var engine types.Type // *capture.Engine
	packages.Visit(roots, nil, func(p *packages.Package) {
		if p.PkgPath == mod+"internal/capture" {
			if obj := p.Types.Scope().Lookup("Engine"); obj != nil {
				engine = types.NewPointer(obj.Type())
			}
		}
	})
	if engine == nil {
		t.Fatal("capture.Engine not found among the binary's packages")
	}
	reachesEngineStart := func(fn *types.Func) bool {
		if fn.Name() != "Start" {
			return false
		}
		recv := fn.Type().(*types.Signature).Recv()
		if recv == nil {
			return false
		}
		if iface, ok := recv.Type().Underlying().(*types.Interface); ok {
			return types.Implements(engine, iface)
		}
		return types.Identical(recv.Type(), engine) || types.Identical(types.NewPointer(recv.Type()), engine)
	}
	var callers []string
	seen := 0
	packages.Visit(roots, nil, func(p *packages.Package) {
		if !strings.HasPrefix(p.PkgPath, mod) {
			return
		}
		seen++
		for _, f := range p.Syntax {
			var enclosing []*ast.FuncDecl
			ast.Inspect(f, func(n ast.Node) bool {
				if n == nil {
					return true
				}
				if fd, ok := n.(*ast.FuncDecl); ok {
					enclosing = append(enclosing[:0], fd)
				}
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				fn, ok := p.TypesInfo.Uses[sel.Sel].(*types.Func)
				if !ok || !reachesEngineStart(fn) {
					return true
				}
				where := "package level"
				if len(enclosing) > 0 && enclosing[0].Pos() <= sel.Pos() && sel.End() <= enclosing[0].End() {
					where = funcName(enclosing[0])
				}
				callers = append(callers, p.PkgPath+"."+where+" at "+p.Fset.Position(sel.Pos()).String())
				return true
			})
		}
	})
	if seen < 8 {
		t.Fatalf("visited only %d carrel packages; the walk is broken", seen)
	}
	if len(callers) != 1 || !strings.HasPrefix(callers[0], mod+"internal/misuse.(*Controller).start at ") {
		t.Errorf("the capture engine's Start is reached from %v; want exactly one place, internal/misuse.(*Controller).start", callers)
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
