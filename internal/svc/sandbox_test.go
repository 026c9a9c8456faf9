package svc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeRoot installs the unit carrel renders, as the .deb does, under a
// folder standing for the root of a system, with the given drop-ins
// (path in the system -> content).
func fakeRoot(t *testing.T, dropIns map[string]string) string {
	t.Helper()
	root := t.TempDir()
	unit, err := RenderUnit("/usr/bin/carrel", []string{"run", "--config", "/etc/carrel/carrel.toml"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/lib/systemd/system/carrel.service": unit}
	for p, c := range dropIns {
		files[p] = c
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSandboxOfTheShippedUnit(t *testing.T) {
	sb, ok, err := readSandbox(fakeRoot(t, nil))
	if err != nil || !ok {
		t.Fatalf("readSandbox() = %v, %v; want the unit found", ok, err)
	}
	if sb.Unit != "/lib/systemd/system/carrel.service" || sb.ProtectSystem != "strict" || sb.ProtectHome != "yes" {
		t.Errorf("sandbox = %+v; want the unit, ProtectSystem=strict, ProtectHome=yes", sb)
	}
	for dir, want := range map[string]bool{
		"/var/lib/carrel": true, "/var/lib/carrel/sub": true, "/run/carrel": true,
		"/var/lib/carrel2": false, "/var/lib": false, "/srv/carrel": false, "/home/lib/carrel": false,
		"/root/carrel": false, "/etc/carrel": false,
	} {
		if got := sb.Allows(dir); got != want {
			t.Errorf("shipped unit: Allows(%s) = %v; want %v", dir, got, want)
		}
	}
}

// TestDropInAllows: the drop-in DataDirHint gives lets the service write
// the folder (a home folder too), and only that folder; drop-ins are
// applied in name order, one in /etc hides one of the same name below,
// and an empty ReadWritePaths= resets the list.
func TestDropInAllows(t *testing.T) {
	for _, dir := range []string{"/srv/carrel", "/home/lib/carrel", "/srv/with space", `/srv/100%`} {
		root := fakeRoot(t, map[string]string{"/etc/systemd/system/carrel.service.d/override.conf": DropIn(dir)})
		sb, ok, err := readSandbox(root)
		if err != nil || !ok {
			t.Fatalf("readSandbox() = %v, %v", ok, err)
		}
		if !sb.Allows(dir) || !sb.Allows(dir+"/sub") || !sb.Allows("/var/lib/carrel") {
			t.Errorf("with the drop-in for %q: Allows = %v; want it and /var/lib/carrel allowed (%+v)", dir, sb.Allows(dir), sb)
		}
		if sb.Allows("/srv/other") || sb.Allows("/home/other") {
			t.Errorf("with the drop-in for %q other folders are allowed too (%+v)", dir, sb)
		}
	}

	root := fakeRoot(t, map[string]string{
		"/lib/systemd/system/carrel.service.d/10-data.conf": "[Service]\nReadWritePaths=/srv/hidden\n",
		"/etc/systemd/system/carrel.service.d/10-data.conf": "[Service]\nReadWritePaths=/srv/a \\\n  -/srv/b\n",
		"/etc/systemd/system/carrel.service.d/20-reset.conf": "# comment\n[Service]\nReadWritePaths=\nReadWritePaths=/srv/c\n" +
			"[Install]\nReadWritePaths=/srv/not-service\n",
	})
	sb, _, err := readSandbox(root)
	if err != nil {
		t.Fatal(err)
	}
	var allowed []string
	for _, d := range []string{"/srv/hidden", "/srv/a", "/srv/b", "/srv/c", "/srv/not-service", "/var/lib/carrel"} {
		if sb.Allows(d) {
			allowed = append(allowed, d)
		}
	}
	if want := []string{"/srv/c", "/var/lib/carrel"}; !slices.Equal(allowed, want) {
		t.Errorf("allowed = %q; want %q (%+v)", allowed, want, sb)
	}
}

func TestNoOrMaskedUnit(t *testing.T) {
	if _, ok, err := readSandbox(t.TempDir()); ok || err != nil {
		t.Errorf("readSandbox(no unit) = %v, %v; want not found", ok, err)
	}
	root := fakeRoot(t, nil)
	mask := filepath.Join(root, "/etc/systemd/system/carrel.service")
	os.MkdirAll(filepath.Dir(mask), 0o755)
	if err := os.Symlink("/dev/null", mask); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := readSandbox(root); ok || err != nil {
		t.Errorf("readSandbox(masked unit) = %v, %v; want not found", ok, err)
	}
}

func TestUnitQuoteRoundTrips(t *testing.T) {
	for _, p := range []string{"/srv/carrel", "/srv/with space", `/srv/100%`, `/srv/a"b`, `/srv/back\slash`, "/srv/tab\there", "/srv/\x1b[2Jpaint", `/srv/\x41`} {
		q := unitQuote(p)
		if got := unitWords(q); !slices.Equal(got, []string{p}) {
			t.Errorf("unitWords(unitQuote(%q)) = %q", p, got)
		}
		if strings.ContainsFunc(q, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("unitQuote(%q) = %q holds a control character", p, q)
		}
	}
}

func TestDataDirHint(t *testing.T) {
	h := DataDirHint("/srv/carrel", false)
	for _, want := range []string{"install -d -m 0700 /srv/carrel", "systemctl edit carrel", "[Service]\nReadWritePaths=/srv/carrel", "systemctl restart carrel"} {
		if !strings.Contains(h, want) {
			t.Errorf("DataDirHint(missing) = %q; want it to say %q", h, want)
		}
	}
	if h := DataDirHint("/srv/carrel", true); strings.Contains(h, "install -d") {
		t.Errorf("DataDirHint(existing) = %q; want no word of creating it", h)
	}
	if h := DataDirHint("/home/lib/carrel", true); !strings.Contains(h, "ProtectHome=read-only") {
		t.Errorf("DataDirHint(home folder) = %q; want ProtectHome=read-only too", h)
	}
}
