package keyfile_test

import (
	"go/build"
	"strings"
	"testing"
)

// keyfile is below everything: the audit log, the booking register and
// the traffic store all use it, so it imports no carrel package.
func TestImportsNoCarrelPackage(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkg.Imports) < 5 {
			t.Fatalf("%s: found %d imports; want the package's", goos, len(pkg.Imports))
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/carrel-lib/carrel/") {
				t.Errorf("%s: keyfile imports %s", goos, imp)
			}
		}
	}
}
