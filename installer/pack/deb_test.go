// The packages are built and judged with Debian tools: the tests run on Linux.

//go:build linux

package pack

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/carrel-lib/carrel/internal/svc"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestDebLintian has lintian judge the package: no error and no warning
// that is not overridden on purpose (installer/pack/deb.go lists the
// overrides and why), pedantic and informational tags included in the
// output for the log.
func TestDebLintian(t *testing.T) {
	lintian := testenv.NeedTool(t, "lintian")
	deb := buildDeb(t, testVersion1)
	out, _ := exec.Command(lintian, "--pedantic", "--info", "--show-overrides", deb).CombinedOutput()
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("lintian reports errors or warnings:\n%s", strings.Join(bad, "\n"))
	}
	// The override is reported as used: lintian did read the package.
	if !strings.Contains(string(out), "O: carrel: non-standard-file-perm 0600 != 0644 [etc/carrel/carrel.toml]") {
		t.Errorf("lintian did not report the config's overridden mode; did it inspect the package?")
	}
}

// TestDebContents checks the control data and the file list against what
// the README and the service promise.
func TestDebContents(t *testing.T) {
	deb := buildDeb(t, testVersion1)
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	for name, want := range map[string]string{
		"Package": "carrel", "Version": "0.9.1+git3.abc1234", "Architecture": "amd64",
	} {
		if got := field(name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	if got := field("Depends"); !strings.HasPrefix(got, "libc6 (>= 2.") || !strings.Contains(got, "passwd") || !strings.Contains(got, "debconf") {
		t.Errorf("Depends = %q; want libc6 (>= 2.x), passwd and debconf", got)
	}
	if got := filepath.Base(deb); got != "carrel_0.9.1+git3.abc1234_amd64.deb" {
		t.Errorf("package file %s; want carrel_VERSION_ARCH.deb", got)
	}

	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	// mode owner/group … path, as tar lists them.
	want := map[string]string{
		"./usr/bin/carrel":                            "-rwxr-xr-x root/root",
		"./etc/carrel/":                               "drwxr-xr-x root/root",
		"./etc/carrel/carrel.toml":                    "-rw------- root/root",
		"./lib/systemd/system/carrel.service":         "-rw-r--r-- root/root",
		"./lib/systemd/system/carrel-witness.service": "-rw-r--r-- root/root",
		"./usr/share/doc/carrel/copyright":            "-rw-r--r-- root/root",
		"./usr/share/doc/carrel/changelog.gz":         "-rw-r--r-- root/root",
		"./usr/share/man/man1/carrel.1.gz":            "-rw-r--r-- root/root",
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if w, ok := want[f[5]]; ok {
			if got := f[0] + " " + f[1]; got != w {
				t.Errorf("%s: %s; want %s", f[5], got, w)
			}
			delete(want, f[5])
		}
		if strings.HasPrefix(f[5], "./var/lib/carrel") {
			t.Errorf("the package ships %s; the data folder is made by postinst and never removed by dpkg", f[5])
		}
	}
	for p := range want {
		t.Errorf("the package lacks %s", p)
	}

	conffiles, err := exec.Command("sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -xO ./conffiles", "sh", deb).Output()
	if err != nil || string(conffiles) != "/etc/carrel/carrel.toml\n" {
		t.Errorf("conffiles = %q, %v; want /etc/carrel/carrel.toml", conffiles, err)
	}
}

// TestDebLifecycle installs, upgrades, removes and purges the package with
// dpkg in a minimal Debian root, and checks what each step leaves behind.
// There is no systemd in the root: first the scripts must cope with that;
// then a stand-in systemd (a /run/systemd/system folder and logging
// deb-systemd-invoke and systemctl) shows they start, restart and stop the
// service when systemd runs.
func TestDebLifecycle(t *testing.T) {
	deb1, deb2 := buildDeb(t, testVersion1), buildDeb(t, testVersion2)
	root := debianRoot(t)
	for name, src := range map[string]string{"/tmp/carrel1.deb": deb1, "/tmp/carrel2.deb": deb2} {
		if err := copyFile(src, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Stand-ins that log instead of acting. deb-systemd-invoke is replaced
	// from the start: without systemd the scripts must not call it. A
	// systemctl appears only while "systemd runs": deb-systemd-helper
	// (kept real) hands enabling to systemctl when there is one.
	shim := func(name string) {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> /tmp/systemd.log\n", name)
		if err := os.WriteFile(filepath.Join(root, "usr/bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shim("deb-systemd-invoke")
	c := &chroot{t: t, root: root}
	systemdLog := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "tmp/systemd.log"))
		os.Remove(filepath.Join(root, "tmp/systemd.log"))
		return string(b)
	}
	// invoked lists the deb-systemd-invoke calls in a log; reloaded
	// tells whether our scripts reloaded systemd.
	invoked := func(log string) (calls []string, reloaded bool) {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "deb-systemd-invoke ") {
				calls = append(calls, l)
			}
			reloaded = reloaded || l == "systemctl --system daemon-reload"
		}
		return calls, reloaded
	}

	// Install, without systemd.
	c.run("dpkg -i /tmp/carrel1.deb")
	c.wantStatus("install ok installed", "0.9.1+git3.abc1234")
	c.wantFile("/usr/bin/carrel", 0o755, false)
	c.wantFile("/etc/carrel", 0o755, true)
	c.wantFile("/etc/carrel/carrel.toml", 0o600, false)
	c.wantFile("/lib/systemd/system/carrel.service", 0o644, false)
	c.wantFile("/var/lib/carrel", 0o700, true)
	unit, err := svc.RenderUnit("/usr/bin/carrel", []string{"run", "--config", "/etc/carrel/carrel.toml"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/carrel.service")); string(got) != unit {
		t.Errorf("installed unit differs from svc.RenderUnit:\n%s", got)
	}
	relay, err := svc.RenderRelayUnit("/usr/bin/carrel", "/etc/carrel/carrel.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/carrel-witness.service")); string(got) != relay {
		t.Errorf("installed relay unit differs from svc.RenderRelayUnit:\n%s", got)
	}
	gid := c.systemGroup("carrel-booking")
	if link, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/carrel.service")); err != nil || link != "/lib/systemd/system/carrel.service" {
		t.Errorf("the unit is not enabled for the next boot: %q, %v", link, err)
	}
	if log := systemdLog(); log != "" {
		t.Errorf("without systemd running, the scripts still called:\n%s", log)
	}
	if out := c.run("carrel version"); !strings.Contains(out, "carrel "+testVersion1.Describe+" linux/amd64") {
		t.Errorf("carrel version = %q; want %s", out, testVersion1.Describe)
	}
	// The shipped config is valid and its permissions pass carrel's own check.
	if out := c.run("carrel config check /etc/carrel/carrel.toml"); !strings.Contains(out, "valid") {
		t.Errorf("carrel config check = %q", out)
	}

	// Upgrade: the edited config and the data stay.
	c.run("echo '# edited by IT' >> /etc/carrel/carrel.toml && echo booking > /var/lib/carrel/bookings.db")
	c.run("dpkg -i --force-confold /tmp/carrel2.deb")
	c.wantStatus("install ok installed", "0.9.2")
	c.wantContains("/etc/carrel/carrel.toml", "# edited by IT")
	c.wantFile("/etc/carrel/carrel.toml", 0o600, false)
	c.wantContains("/var/lib/carrel/bookings.db", "booking")
	if g := c.systemGroup("carrel-booking"); g != gid {
		t.Errorf("upgrade changed the group's id from %s to %s", gid, g)
	}

	// With systemd running: reinstalling restarts (and never stops),
	// removing stops.
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	shim("systemctl")
	c.run("dpkg -i /tmp/carrel2.deb")
	log := systemdLog()
	if calls, reloaded := invoked(log); strings.Join(calls, ";") != "deb-systemd-invoke restart carrel.service" || !reloaded {
		t.Errorf("upgrade under systemd called:\n%s\nwant a daemon-reload and one restart", log)
	}
	c.run("dpkg -r carrel")
	log = systemdLog()
	if calls, reloaded := invoked(log); strings.Join(calls, ";") != "deb-systemd-invoke stop carrel.service" || !reloaded {
		t.Errorf("remove under systemd called:\n%s\nwant one stop and a daemon-reload", log)
	}
	os.Remove(filepath.Join(root, "run/systemd/system"))
	os.Remove(filepath.Join(root, "usr/bin/systemctl"))

	// Removed: the program and unit are gone, config and data stay.
	c.wantStatus("deinstall ok config-files", "0.9.2")
	c.wantGone("/usr/bin/carrel")
	c.wantGone("/lib/systemd/system/carrel.service")
	c.wantContains("/etc/carrel/carrel.toml", "# edited by IT")
	c.wantContains("/var/lib/carrel/bookings.db", "booking")

	// Purged without being asked to delete data: dpkg removes the conffile,
	// the data folder stays, and the script says so.
	if out := c.run("dpkg -P carrel"); !strings.Contains(out, "kept /var/lib/carrel") {
		t.Errorf("dpkg -P output does not mention the kept data folder:\n%s", out)
	}
	c.wantGone("/etc/carrel/carrel.toml")
	c.wantGone("/etc/carrel")
	c.wantGone("/etc/systemd/system/multi-user.target.wants/carrel.service")
	c.wantContains("/var/lib/carrel/bookings.db", "booking")
	c.systemGroup("carrel-booking")
	if out := c.run("dpkg-query -W -f='${Status}' carrel 2>&1 || true"); strings.Contains(out, "installed") {
		t.Errorf("after purge, dpkg still knows carrel: %q", out)
	}

	// Install again (the kept folder is reused), then purge with the
	// preseeded answer: now the data goes.
	c.run("dpkg -i /tmp/carrel1.deb")
	c.wantContains("/var/lib/carrel/bookings.db", "booking")
	c.wantFile("/var/lib/carrel", 0o700, true)
	c.run("echo 'carrel carrel/purge_data boolean true' | debconf-set-selections && dpkg -P carrel")
	c.wantGone("/var/lib/carrel")
	c.wantGone("/etc/carrel")
	if out := c.run("debconf-show carrel"); strings.Contains(out, "purge_data") {
		t.Errorf("purge left carrel's debconf answers behind: %q", out)
	}
}

// chroot runs commands in a Debian root and checks what they left.
type chroot struct {
	t    *testing.T
	root string
}

// run runs a shell command line in the root and fails the test when it
// fails; it returns the combined output.
func (c *chroot) run(script string) string {
	c.t.Helper()
	cmd := exec.Command("chroot", c.root, "/bin/sh", "-ec", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("chroot: %s: %v\n%s", script, err, out)
	}
	return string(out)
}

func (c *chroot) wantStatus(status, version string) {
	c.t.Helper()
	if got := c.run("dpkg-query -W -f='${Status} ${Version}' carrel"); got != status+" "+version {
		c.t.Errorf("dpkg-query: carrel is %q; want %q", got, status+" "+version)
	}
}

// wantFile checks type, mode and root ownership of a path in the root.
func (c *chroot) wantFile(path string, mode fs.FileMode, dir bool) {
	c.t.Helper()
	fi, err := os.Stat(filepath.Join(c.root, path))
	if err != nil {
		c.t.Errorf("%s: %v", path, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	want := mode
	if dir {
		want |= fs.ModeDir
	}
	if fi.Mode() != want || st.Uid != 0 || st.Gid != 0 {
		c.t.Errorf("%s: %v owned by %d:%d; want %v owned by root", path, fi.Mode(), st.Uid, st.Gid, want)
	}
}

func (c *chroot) wantGone(path string) {
	c.t.Helper()
	if _, err := os.Lstat(filepath.Join(c.root, path)); err == nil {
		c.t.Errorf("%s is still there", path)
	}
}

func (c *chroot) wantContains(path, s string) {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.root, path))
	if err != nil || !bytes.Contains(b, []byte(s)) {
		c.t.Errorf("%s lacks %q (%v)", path, s, err)
	}
}

// systemGroup returns the id of a group of the root and checks it is a
// system group.
func (c *chroot) systemGroup(name string) string {
	c.t.Helper()
	out := strings.TrimSpace(c.run("getent group " + name + " | cut -d: -f3"))
	var id int
	if _, err := fmt.Sscan(out, &id); err != nil || id >= 1000 {
		c.t.Errorf("group %s has id %q; want a system group (below 1000)", name, out)
	}
	return out
}

func TestMirrorIn(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, text, want string }{
		{"deb822", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n", "http://deb.debian.org/debian"},
		{"deb822 security first", "URIs: http://deb.debian.org/debian-security\n\nURIs: http://ftp.dk.debian.org/debian/\n", "http://ftp.dk.debian.org/debian"},
		{"one-line with options", "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main\n", "http://mirror.example/debian"},
		{"one-line, other archive", "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n", ""},
		{"comment", "# deb http://deb.debian.org/debian bookworm main\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := mirrorIn(p); got != tt.want {
				t.Errorf("mirrorIn(%q) = %q; want %q", tt.text, got, tt.want)
			}
		})
	}
}

// TestCopyrightCoversEveryModule: every module linked into the binary has
// its paragraph and licence in the copyright file, and a licence nobody
// has classified stops the build.
func TestCopyrightCoversEveryModule(t *testing.T) {
	bin := linuxBinary(t)
	c, err := Copyright(bin, testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) < 5 {
		t.Fatalf("the binary lists %d modules; is the build information there?", len(info.Deps))
	}
	for _, m := range info.Deps {
		para := "\nFiles: " + m.Path + "/*\nCopyright: "
		i := bytes.Index(c, []byte(para))
		if i < 0 {
			t.Errorf("copyright has no paragraph for %s", m.Path)
			continue
		}
		rest := c[i+len(para):]
		if end := bytes.Index(rest, []byte("\n\n")); end < 0 || !bytes.Contains(rest[:end], []byte("\nLicense: ")) {
			t.Errorf("copyright paragraph of %s has no licence", m.Path)
		}
	}
	for _, text := range []string{"All rights reserved. Do not copy.", "GNU GENERAL PUBLIC LICENSE Version 3"} {
		if l, err := classify(text); err == nil {
			t.Errorf("classify(%q) = %q; want an error", text, l.Name)
		}
	}
}
