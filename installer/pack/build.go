package pack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The binaries that go into the packages are built here, with the flags of
// `make build` plus what a package needs: for Linux the hardening Debian
// builds C code with (a position-independent executable for ASLR, full
// RELRO, and the fortified, stack-protected C of SQLite; lintian checks
// each), for Windows the version resource.

func ldflags(v Version) string { return "-s -w -X main.version=" + v.Describe }

// BuildLinux builds carrel for linux/amd64 from the module in repo.
func BuildLinux(repo string, v Version, out string) error {
	return goBuild(repo, out, []string{"CGO_CFLAGS=-O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong"},
		"-buildmode=pie", "-ldflags", ldflags(v)+" -extldflags=-Wl,-z,relro,-z,now")
}

// MinGW is the C compiler for windows/amd64 cgo (Debian gcc-mingw-w64-x86-64).
var MinGW = "x86_64-w64-mingw32-gcc"

// BuildWindows builds carrel.exe for windows/amd64 from the module in repo,
// with its version resource linked in.
func BuildWindows(repo string, v Version, out string) error {
	dir, err := os.MkdirTemp("", "carrel-exe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res := filepath.Join(dir, "carrel-res.o")
	if err := VersionResource(v, res); err != nil {
		return err
	}
	// cgo links with mingw's ld, which takes the resource object as one
	// more input and makes its .rsrc section the resource directory.
	return goBuild(repo, out, []string{"GOOS=windows", "GOARCH=amd64", "CC=" + MinGW},
		"-ldflags", ldflags(v)+" -extldflags="+res)
}

func goBuild(repo, out string, env []string, flags ...string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-o", abs}, flags...)
	cmd := exec.Command("go", append(args, "./cmd/carrel")...)
	cmd.Dir = repo
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=1"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, b)
	}
	return nil
}
