package pack

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/installer"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/svc"
	"golang.org/x/mod/semver"
)

// Where the .deb puts carrel. The unit's ExecStart, the maintainer scripts
// and the README use the same paths.
const (
	DebBinary  = "/usr/bin/carrel"
	DebConfig  = "/etc/carrel/carrel.toml"
	DebUnit    = "/lib/systemd/system/carrel.service"
	DebRelay   = "/lib/systemd/system/carrel-witness.service"
	DebDocDir  = "/usr/share/doc/carrel"
	DebDataDir = "/var/lib/carrel"
)

// DebOptions says what goes into the .deb.
type DebOptions struct {
	Binary     string    // the carrel binary for Linux; empty: BuildLinux makes it
	Version    Version   // from git describe
	Maintainer string    // "Name <address>"
	Date       time.Time // of the changelog entry and the files: the commit's time, for reproducible builds
	RepoRoot   string    // where README.md and LICENSE are
	OutDir     string
}

// file is one entry of a package tree.
type file struct {
	path string // absolute, in the installed system
	mode fs.FileMode
	data []byte
}

// Deb builds carrel_VERSION_ARCH.deb in o.OutDir with dpkg-deb and returns
// its path. Everything in it is owned by root.
func Deb(o DebOptions) (string, error) {
	stage, err := os.MkdirTemp("", "carrel-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if o.Binary == "" {
		o.Binary = filepath.Join(stage, "carrel")
		if err := BuildLinux(o.RepoRoot, o.Version, o.Binary); err != nil {
			return "", err
		}
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return "", err
	}
	man, err := ManPage(o.Binary, o.Version, o.Date)
	if err != nil {
		return "", err
	}
	arch, libc, err := elfFacts(o.Binary)
	if err != nil {
		return "", err
	}
	unit, err := svc.RenderUnit(DebBinary, []string{"run", "--config", DebConfig})
	if err != nil {
		return "", err
	}
	relay, err := svc.RenderRelayUnit(DebBinary, DebConfig)
	if err != nil {
		return "", err
	}
	readme, err := os.ReadFile(filepath.Join(o.RepoRoot, "README.md"))
	if err != nil {
		return "", err
	}
	copyright, err := Copyright(o.Binary, o.RepoRoot)
	if err != nil {
		return "", err
	}
	version := o.Version.Debian()
	files := []file{
		{DebBinary, 0o755, bin},
		// root only: whoever can read the config learns the cases; whoever
		// can write it can declare one.
		{DebConfig, 0o600, config.Example("")},
		{DebUnit, 0o644, []byte(unit)},
		{DebRelay, 0o644, []byte(relay)},
		{DebDocDir + "/README.md", 0o644, readme},
		{DebDocDir + "/copyright", 0o644, copyright},
		{DebDocDir + "/changelog.gz", 0o644, gzipped(changelog(version, o))},
		{"/usr/share/man/man1/carrel.1.gz", 0o644, gzipped(man)},
		{"/usr/share/lintian/overrides/carrel", 0o644, lintianOverrides},
	}
	root := filepath.Join(stage, "root")
	if err := writeTree(root, files, o.Date); err != nil {
		return "", err
	}

	control := map[string][]byte{
		"control":   debControl(version, arch, libc, o.Maintainer, installedSize(files)),
		"conffiles": []byte(DebConfig + "\n"),
		"md5sums":   md5sums(files),
	}
	scripts, err := fs.ReadDir(installer.Debian, "debian")
	if err != nil {
		return "", err
	}
	var meta []file
	for name, data := range control {
		meta = append(meta, file{"/DEBIAN/" + name, 0o644, data})
	}
	for _, s := range scripts {
		data, err := fs.ReadFile(installer.Debian, "debian/"+s.Name())
		if err != nil {
			return "", err
		}
		mode := fs.FileMode(0o755)
		if s.Name() == "templates" {
			mode = 0o644
		}
		meta = append(meta, file{"/DEBIAN/" + s.Name(), mode, data})
	}
	if err := writeTree(root, meta, o.Date); err != nil {
		return "", err
	}

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.OutDir, fmt.Sprintf("carrel_%s_%s.deb", version, arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.Date.Unix(), 10))
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb: %v: %s", err, b)
	}
	return out, nil
}

// writeTree writes files under root with exactly their modes (the umask
// does not apply) and the folders above them 0755.
func writeTree(root string, files []file, mtime time.Time) error {
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
		}
		return os.Chtimes(p, mtime, mtime)
	})
}

// lintianOverrides are the lintian tags carrel's package raises on purpose.
var lintianOverrides = []byte(`# The config says who may capture traffic and names the people in each
# misuse case: root only (carrel refuses a config that others can write).
carrel: non-standard-file-perm 0600 != 0644 [etc/carrel/carrel.toml]
`)

const debDescription = `booking-time register for public library PCs
 carrel records when each public library PC is booked, and nothing else,
 until library staff declare a misuse case with a notice posted at the PCs.
 Only then does it log network traffic, encrypted with age to the head
 librarian's key and kept apart from the bookings. Every mode change,
 deletion and export is written to a tamper-evident audit log.
`

func debControl(version, arch, libc, maintainer string, size int64) []byte {
	depends := []string{"passwd", "debconf (>= 0.5) | debconf-2.0"}
	if libc != "" {
		depends = append([]string{libc}, depends...)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Package: carrel\nVersion: %s\nArchitecture: %s\nMaintainer: %s\n", version, arch, maintainer)
	fmt.Fprintf(&b, "Installed-Size: %d\nDepends: %s\n", size, strings.Join(depends, ", "))
	b.WriteString("Section: admin\nPriority: optional\nHomepage: https://github.com/carrel-lib/carrel\n")
	b.WriteString("Description: " + debDescription)
	return b.Bytes()
}

// installedSize is the Installed-Size field: KiB, as dpkg-gencontrol
// counts them (each file rounded up, one per folder).
func installedSize(files []file) int64 {
	var kib int64
	dirs := map[string]bool{}
	for _, f := range files {
		kib += (int64(len(f.data)) + 1023) / 1024
		for d := path.Dir(f.path); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	return kib + int64(len(dirs))
}

func md5sums(files []file) []byte {
	var lines []string
	for _, f := range files {
		lines = append(lines, fmt.Sprintf("%x  %s\n", md5.Sum(f.data), strings.TrimPrefix(f.path, "/")))
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, ""))
}

// changelog is the one-entry changelog a native package must carry.
func changelog(version string, o DebOptions) []byte {
	return fmt.Appendf(nil, "carrel (%s) unstable; urgency=medium\n\n  * Built from %s (git describe).\n\n -- %s  %s\n",
		version, o.Version.Describe, o.Maintainer, o.Date.UTC().Format(time.RFC1123Z))
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression) // no name, no time: reproducible
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// elfFacts returns the Debian architecture of bin and the libc6
// dependency its versioned glibc symbols need ("" for a static binary).
// A shared library outside glibc is an error: it would need its own
// Depends entry.
func elfFacts(bin string) (arch, libc string, err error) {
	f, err := elf.Open(bin)
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", bin, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		arch = "amd64"
	case elf.EM_AARCH64:
		arch = "arm64"
	default:
		return "", "", fmt.Errorf("%s: no Debian architecture for machine %v", bin, f.Machine)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", bin, err)
	}
	if len(libs) == 0 {
		return arch, "", nil
	}
	for _, l := range libs {
		if !strings.HasPrefix(l, "libc.so.") && !strings.HasPrefix(l, "ld-linux") &&
			!strings.HasPrefix(l, "libpthread.so.") && !strings.HasPrefix(l, "libdl.so.") &&
			!strings.HasPrefix(l, "libm.so.") && !strings.HasPrefix(l, "libresolv.so.") {
			return "", "", fmt.Errorf("%s links %s, which is not part of libc6: add its package to Depends", bin, l)
		}
	}
	syms, err := f.ImportedSymbols()
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", bin, err)
	}
	need := "2.2.5" // the oldest amd64 glibc symbol version
	for _, s := range syms {
		// glibc versions are semver's short forms (2.2.5, 2.34); GLIBC_PRIVATE,
		// not a version, is never greater.
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && semver.Compare("v"+need, "v"+v) < 0 {
			need = v
		}
	}
	return arch, "libc6 (>= " + need + ")", nil
}
