// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// The packages the tests judge are built once per test run, by the same
// functions `make deb` and `make msi` use.

var (
	workDir string // removed after the tests

	binMu     sync.Mutex
	linuxBins = map[Version]builtBinary{} // built by linuxBinaryOf

	winOnce sync.Once
	winExe  string
	winErr  error

	debMu sync.Mutex
	debs  = map[Version]string{} // built by buildDeb
)

// Versions of the packages under test: the upgrade goes from one to two.
var (
	testVersion1 = ParseVersion("v0.9.1-3-gabc1234", 40)
	testVersion2 = ParseVersion("v0.9.2", 41)
	testDate     = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithWorkDir(m, "carrel-pack-test-", &workDir)) }

// linuxBinary is carrel built for the .deb, reporting testVersion1.
func linuxBinary(t *testing.T) string { return linuxBinaryOf(t, testVersion1) }

type builtBinary struct {
	path string
	err  error
}

// linuxBinaryOf is carrel built for the .deb of version v, reporting v, so
// that an upgrade in a test really changes the running version. Each is
// built once per test run; after the first only the link differs.
func linuxBinaryOf(t *testing.T, v Version) string {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	binMu.Lock()
	defer binMu.Unlock()
	b, ok := linuxBins[v]
	if !ok {
		b.path = filepath.Join(workDir, fmt.Sprintf("carrel-%d", len(linuxBins)))
		b.err = BuildLinux(testenv.RepoRoot(t), v, b.path)
		linuxBins[v] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// windowsExe is carrel.exe built for the MSI, reporting testVersion1.
func windowsExe(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, MinGW, Windres)
	winOnce.Do(func() {
		winExe = filepath.Join(workDir, "carrel.exe")
		winErr = BuildWindows(testenv.RepoRoot(t), testVersion1, winExe)
	})
	if winErr != nil {
		t.Fatal(winErr)
	}
	return winExe
}

// buildDeb packages the test binary of version v, once per version: the
// xz compression takes seconds, and the tests only read the package.
func buildDeb(t *testing.T, v Version) string {
	t.Helper()
	testenv.NeedTool(t, "dpkg-deb")
	bin := linuxBinaryOf(t, v)
	debMu.Lock()
	defer debMu.Unlock()
	if deb, ok := debs[v]; ok {
		return deb
	}
	deb, err := Deb(DebOptions{Binary: bin, Version: v, Maintainer: "carrel tests <tests@carrel-lib.invalid>",
		Date: testDate, RepoRoot: testenv.RepoRoot(t), OutDir: filepath.Join(workDir, "debs")})
	if err != nil {
		t.Fatal(err)
	}
	debs[v] = deb
	return deb
}

// debianRoot returns a fresh copy of a minimal Debian system (debootstrap
// --variant=minbase, with systemd, systemd-sysv and dbus so that it can
// also boot under systemd-nspawn) to install packages into. The pristine
// root is made once and kept in the test cache (testenv.CacheDir); it
// needs a Debian mirror (see debianMirror).
func debianRoot(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "debootstrap", "chroot", "cp")
	suite, mirror := debianSuite(), debianMirror()
	cache := testenv.CacheDir(t, "debroot")
	// The name says what the root holds: a cache made with other packages
	// is not mistaken for this one.
	pristine := filepath.Join(cache, suite+"-minbase-"+strings.Join(debianRootPackages, "-"))
	defer testenv.LockFile(t, pristine+".lock")()
	if _, err := os.Stat(filepath.Join(pristine, "var/lib/dpkg/status")); err != nil {
		start := time.Now()
		if err := debootstrap(suite, mirror, pristine); err != nil {
			t.Fatalf("building the Debian root with debootstrap from %s: %v", mirror, err)
		}
		t.Logf("debootstrap %s from %s: %s (cached in %s)", suite, mirror, time.Since(start).Round(time.Second), pristine)
	}
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", pristine, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the Debian root: %v: %s", err, out)
	}
	return dst
}

// debianRootPackages are added to minbase: an init system to boot, and
// the bus systemctl talks to.
var debianRootPackages = []string{"systemd", "systemd-sysv", "dbus"}

func debootstrap(suite, mirror, dst string) error {
	tmp := dst + ".tmp"
	os.RemoveAll(tmp)
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(debianRootPackages, ","),
		suite, tmp, mirror).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("%v\n%s", err, lastLines(string(out), 15))
	}
	// What dpkg does not need: apt's caches and lists, documentation,
	// translations. A smaller root copies faster for every test.
	for _, glob := range []string{"var/cache/apt/*", "var/lib/apt/lists/*", "usr/share/doc/*",
		"usr/share/man/*", "usr/share/locale/*", "usr/share/info/*", "var/log/*"} {
		matches, _ := filepath.Glob(filepath.Join(tmp, glob))
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
	os.RemoveAll(dst)
	return os.Rename(tmp, dst)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// debianSuite is the release the test root runs: this machine's (the
// binary under test links its C library), or CARREL_DEBIAN_SUITE.
func debianSuite() string {
	if s := os.Getenv("CARREL_DEBIAN_SUITE"); s != "" {
		return s
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil && strings.Contains(string(b), "\nID=debian") {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VERSION_CODENAME="); ok && v != "" {
				return v
			}
		}
	}
	return "bookworm"
}

// debianMirror is CARREL_DEBIAN_MIRROR, else the first Debian archive in
// this machine's apt sources (the mirror it is known to reach), else
// deb.debian.org.
func debianMirror() string {
	if m := os.Getenv("CARREL_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range append([]string{"/etc/apt/sources.list"}, files...) {
		if m := mirrorIn(f); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorIn finds a Debian archive URI in a one-line-style or deb822
// sources file: one whose path ends in /debian (not debian-security).
func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		var uris []string
		switch {
		case len(fields) >= 3 && fields[0] == "deb":
			options := false // inside [option=value …]
			for _, fl := range fields[1:] {
				options = options || strings.HasPrefix(fl, "[")
				if options {
					options = !strings.HasSuffix(fl, "]")
					continue
				}
				uris = append(uris, fl)
				break
			}
		case len(fields) >= 2 && fields[0] == "URIs:":
			uris = fields[1:]
		}
		for _, u := range uris {
			if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
				return strings.TrimSuffix(u, "/")
			}
		}
	}
	return ""
}
