package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
)

// TestDataDirLinkRepointed: storage.data_dir is reached through a link.
// While the service runs, the link is pointed at another folder (as root,
// simulating the race an account that could write the link's folder would
// run; the service refuses such a folder at start). Capture then runs
// under a case: its sealed segments land in the folder the service opened
// at start, none in the other, and `traffic list` shows them.
func TestDataDirLinkRepointed(t *testing.T) {
	dataLine := regexp.MustCompile(`(?m)^data_dir = '(.*)/data'$`)
	socketLine := regexp.MustCompile(`(?m)^api_socket = '(.*)/data/api.sock'$`)
	l, dir := newPCLabConfig(t, func(s string) string {
		s = dataLine.ReplaceAllString(s, "data_dir = '$1/data-link'")
		return socketLine.ReplaceAllString(s, "api_socket = '$1/run/api.sock'")
	})
	cfgPath := l.cfgPath
	real, decoy, link := filepath.Join(dir, "real"), filepath.Join(dir, "decoy"), filepath.Join(dir, "data-link")
	for _, d := range []string{real, decoy} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	l.dataDir = real
	l.client = api.NewClient(filepath.Join(dir, "run", "api.sock"))
	l.svc = startServiceIn(t, cfgPath, l.lab.PC)

	repoint := func(to string) {
		t.Helper()
		if err := os.Symlink(to, link+".new"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(link+".new", link); err != nil {
			t.Fatal(err)
		}
	}
	repoint(decoy)

	now := time.Now()
	l.writeConfig(t, tcase{id: "dd-1", start: now.Add(-time.Minute), end: now.Add(time.Hour)}.toml())
	waitUntil(t, "capture on", func() bool { return l.status(t).Mode == "capturing" })
	l.traffic(t, "repointed")
	l.writeConfig(t, "") // the case is withdrawn: capture stops and seals
	waitUntil(t, "capture off", func() bool { return l.status(t).Mode == "bookings-only" })

	var segs []string
	for _, f := range l.trafficFiles(t) {
		if strings.HasSuffix(f, ".age") {
			segs = append(segs, f)
		}
	}
	if len(segs) == 0 {
		t.Errorf("no sealed segment in the folder the service opened (%s)", real)
	}
	if names, _ := os.ReadDir(decoy); len(names) != 0 {
		t.Errorf("the folder the link was pointed at holds %v; want nothing", names)
	}

	repoint(real) // the race is over
	out, code := carrelRun(t, "traffic", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "dd-1") {
		t.Errorf("traffic list = %d %s; want the case's segments", code, out)
	}
}

// TestRefusedEndTakesEffectWhenFixed: capture runs under a case; the
// config's folder is made writable by others (a careless chmod) and the
// case is withdrawn in that state. The edit is refused, so capture carries
// on under the config in force; once the folder is fixed — the file itself
// untouched — the edit is taken up and capture stops.
func TestRefusedEndTakesEffectWhenFixed(t *testing.T) {
	l := newPCLab(t)
	dir := filepath.Dir(l.cfgPath)
	now := time.Now()
	l.writeConfig(t, tcase{id: "fix-1", start: now.Add(-time.Minute), end: now.Add(time.Hour)}.toml())
	waitUntil(t, "capture on", func() bool { return l.status(t).Mode == "capturing" })

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	l.writeConfig(t, "")
	waitUntil(t, "the edit refused", func() bool {
		return strings.Contains(l.status(t).ConfigRejected, dir+": writable by group or others (mode 0777)")
	})
	if st := l.status(t); st.Mode != "capturing" {
		t.Errorf("mode while the edit is refused = %s; want capturing under the config in force", st.Mode)
	}

	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, "capture off once the folder is fixed", func() bool {
		st := l.status(t)
		return st.Mode == "bookings-only" && st.ConfigRejected == ""
	})
	t.Logf("capture off %s after the folder was fixed", took.Round(time.Millisecond))
}
