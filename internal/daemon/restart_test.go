package daemon

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/carrel-lib/carrel/internal/api"
)

// TestDataDirChangeTakesEffectAtRestart: a running service that is given
// a new storage.data_dir keeps its data where it is until it restarts,
// and says so: in the log once, and in status (which names the folder in
// use, not the one configured) for as long as the change is pending. A
// later unrelated change does not repeat it; changing it back clears it.
func TestDataDirChangeTakesEffectAtRestart(t *testing.T) {
	fastPolls(t)
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	status := func() api.Status { return h.status(t) }
	inUse := filepath.Join(dir, "data")
	elsewhere := filepath.Join(dir, "data2")
	orig, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(doc []byte, from, to string) []byte {
		t.Helper()
		if !bytes.Contains(doc, []byte(from)) {
			t.Fatalf("config has no %s", from)
		}
		return bytes.Replace(doc, []byte(from), []byte(to), 1)
	}
	moved := edit(orig, "data_dir = '"+inUse+"'", "data_dir = '"+elsewhere+"'")
	pending := func(st api.Status) []string {
		var out []string
		for _, w := range st.Warnings {
			if strings.Contains(w, "storage.data_dir") {
				out = append(out, w)
			}
		}
		return out
	}
	logged := func() int { return strings.Count(h.log.String(), "storage.data_dir changed") }

	replaceConfig(t, h.cfgPath, moved)
	waitFor(t, "the new config in force", hangGuard, func() bool { return len(pending(status())) > 0 })
	st := status()
	if st.DataDir != inUse {
		t.Errorf("status names data folder %q after the change; want %q, the one still in use", st.DataDir, inUse)
	}
	if p := pending(st); len(p) != 1 || !strings.Contains(p[0], elsewhere) || !strings.Contains(p[0], "restart") {
		t.Errorf("status warnings about storage.data_dir = %q; want one naming %s and the restart", p, elsewhere)
	}
	if n := logged(); n != 1 {
		t.Errorf("the log says %d times that storage.data_dir changed; want once\n%s", n, h.log)
	}
	if _, err := os.Stat(elsewhere); !os.IsNotExist(err) {
		t.Errorf("the new data folder was made before a restart: %v", err)
	}

	// An unrelated change later: still one pending warning, not logged again.
	replaceConfig(t, h.cfgPath, edit(moved, `retention = "28d"`, `retention = "14d"`))
	waitFor(t, "the second change in force", hangGuard, func() bool { return status().Retention == "14d" })
	if p := pending(status()); len(p) != 1 {
		t.Errorf("after a second change status warns %d times about storage.data_dir; want once: %q", len(p), p)
	}
	if n := logged(); n != 1 {
		t.Errorf("after a second change the log says %d times that storage.data_dir changed; want once", n)
	}

	// Back to the folder in use: nothing pending any more.
	replaceConfig(t, h.cfgPath, edit(orig, `retention = "28d"`, `retention = "7d"`))
	waitFor(t, "the third change in force", hangGuard, func() bool { return status().Retention == "7d" })
	if p := pending(status()); len(p) != 0 {
		t.Errorf("with data_dir back to the folder in use, status still warns %q", p)
	}
	if st := status(); !slices.Equal(st.Warnings, pending(st)) && len(st.Warnings) != 0 {
		t.Errorf("status warnings = %q", st.Warnings)
	}

	// After a restart the new folder is the one in use.
	replaceConfig(t, h.cfgPath, moved)
	waitFor(t, "the move in force", hangGuard, func() bool { return len(pending(status())) > 0 })
	h.stop(t)
	h = start(t, dir, nil)
	if st := status(); st.DataDir != elsewhere || len(pending(st)) != 0 {
		t.Errorf("after the restart status names %q, warns %q; want %s and nothing pending", st.DataDir, pending(st), elsewhere)
	}
}

// TestHiddenNewDataDir: a new data_dir that the service cannot look at
// while it runs (under the unit, ProtectHome=yes hides /home from it, and
// looking fails with "permission denied") does not hold back the config:
// the rest of it is put in force, and status and the log say the folder
// is judged when the service restarts. Before, the whole config was
// treated as unreadable and retried for ever, silently to status.
func TestHiddenNewDataDir(t *testing.T) {
	fastPolls(t)
	dir := t.TempDir()
	writeConfig(t, dir, "")
	hidden := "/home/lib/carrel"
	old := checkDataDir
	checkDataDir = func(p string) error {
		if p == hidden {
			return &fs.PathError{Op: "open", Path: "/home/lib", Err: syscall.EACCES}
		}
		return old(p)
	}
	t.Cleanup(func() { checkDataDir = old })
	h := start(t, dir, nil) // stopped (a cleanup) before checkDataDir is restored
	ctx := context.Background()
	orig, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := bytes.Replace(orig, []byte("data_dir = '"+filepath.Join(dir, "data")+"'"), []byte("data_dir = '"+hidden+"'"), 1)
	doc = bytes.Replace(doc, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1)
	replaceConfig(t, h.cfgPath, doc)
	var st api.Status
	waitFor(t, "the rest of the config in force", hangGuard, func() bool {
		st, err = h.client.Status(ctx)
		return err == nil && st.Retention == "14d"
	})
	warned := strings.Join(st.Warnings, "\n")
	for _, want := range []string{`storage.data_dir "` + hidden + `" could not be checked now`, "permission denied", "when the service restarts",
		`storage.data_dir changed to "` + hidden + `"`} {
		if !strings.Contains(warned, want) {
			t.Errorf("status warnings = %q; want them to say %q", st.Warnings, want)
		}
	}
	if st.ConfigRejected != "" || st.DataDir != filepath.Join(dir, "data") {
		t.Errorf("status: rejected %q, data folder %q; want nothing rejected and the folder in use", st.ConfigRejected, st.DataDir)
	}
	if strings.Contains(h.log.String(), "cannot read the config file") {
		t.Errorf("the log calls the config unreadable:\n%s", h.log)
	}
}
