package seal_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// sealOne writes n records of caseID at the clock's time and seals them.
func (e *env) sealOne(caseID string, n int) seal.Segment {
	e.t.Helper()
	w := e.writer(seal.WriterOptions{Case: caseID})
	for i := range n {
		if err := w.Write(jsonRecord(i), e.clock.Now().Add(time.Duration(i)*time.Second)); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	segs := e.segments(seal.Filter{Case: caseID})
	return segs[len(segs)-1]
}

func TestCheckDetectsDamage(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		damage func(path string) error
		want   string
	}{
		{"intact", func(string) error { return nil }, ""},
		{"truncated", func(p string) error {
			fi, _ := os.Stat(p)
			return os.Truncate(p, fi.Size()-1)
		}, "truncated or extended"},
		{"extended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte{0})
			return f.Close()
		}, "truncated or extended"},
		{"bit flipped", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x01
			return os.WriteFile(p, b, 0o600)
		}, "(altered)"},
		{"missing", os.Remove, "file is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			seg := e.sealOne("case-1", 50)
			path, _ := e.store.Path(seg.Name)
			if err := c.damage(path); err != nil {
				t.Fatal(err)
			}
			err := e.store.Check(ctx, seg.Name)
			if c.want == "" {
				if err != nil {
					t.Errorf("Check() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, seal.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check() = %v; want ErrCorrupt saying %q", err, c.want)
			}
		})
	}
}

func TestCheckUnknownAndUnsealed(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Check(context.Background(), "nope-20240501T120000.000Z-00000001.jsonl.age"); !errors.Is(err, seal.ErrNotFound) {
		t.Errorf("Check(unknown) = %v; want ErrNotFound", err)
	}
}

func TestStoreFilesArePrivate(t *testing.T) {
	e := newEnv(t)
	e.sealOne("case-1", 3)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{e.store.Dir(), 0o700},
		{filepath.Join(e.store.Dir(), "traffic.db"), 0o600},
		{filepath.Join(e.store.Dir(), e.segments(seal.Filter{})[0].Name), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("mode of %s = %v; want %v", filepath.Base(c.path), got, c.want)
		}
	}
	if filepath.Dir(e.store.Dir()) != e.dataDir || filepath.Base(e.store.Dir()) != "traffic" {
		t.Errorf("store folder = %s; want <data_dir>/traffic", e.store.Dir())
	}
}

func TestOpenRefusesAFolderOthersCanReach(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dataDir, "traffic"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dataDir, "traffic"), 0o755) // whatever the umask
	_, err := seal.Open(context.Background(), dataDir, seal.Options{Recorder: newRecorder(t)})
	var pe *seal.PermError
	if !errors.As(err, &pe) || !strings.Contains(pe.Hint(), "chmod 700") {
		t.Errorf("Open(0755 traffic folder) = %v; want a PermError with a chmod hint", err)
	}
}

func TestOnlyOneProcessWrites(t *testing.T) {
	e := newEnv(t)
	// A second Store on the same folder (as `carrel traffic release` opens
	// while the service runs) may hold and release but not write.
	other, err := seal.Open(context.Background(), e.dataDir, seal.Options{Recorder: newRecorder(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.NewWriter(seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{e.key.recipient}})
	if err == nil || !strings.Contains(err.Error(), "in use by another carrel process") {
		t.Errorf("second NewWriter = %v; want in use by another process", err)
	}
	seg := e.sealOne("case-1", 2)
	if _, err := other.Hold(context.Background(), "BS-1/2024", []string{seg.Name}); err != nil {
		t.Errorf("Hold from the second Store = %v; want nil", err)
	}

	inspect, err := seal.Open(context.Background(), e.dataDir, seal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inspect.Close()
	if segs, err := inspect.Segments(context.Background(), seal.Filter{}); err != nil || len(segs) != 1 || len(segs[0].Holds) != 1 {
		t.Errorf("inspect Segments() = %+v, %v; want the one held segment", segs, err)
	}
	if _, err := inspect.Release(context.Background(), "BS-1/2024"); err == nil {
		t.Error("Release without an audit log = nil error; want refused")
	}
}

func TestIndexSchemaVersion(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	db, err := sql.Open("sqlite3", filepath.Join(e.dataDir, "traffic", "traffic.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	db.QueryRow(`PRAGMA user_version`).Scan(&v)
	var mode string
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if v != 1 || mode != "wal" {
		t.Errorf("user_version, journal_mode = %d, %s; want 1, wal", v, mode)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	_, err = seal.Open(context.Background(), e.dataDir, seal.Options{Recorder: e.rec})
	if err == nil || !strings.Contains(err.Error(), "newer than this carrel knows") {
		t.Errorf("Open(schema 99) = %v; want a refusal naming the version", err)
	}
}

func TestIndexIsReadableBySqlite3(t *testing.T) {
	bin := testenv.NeedTool(t, "sqlite3")
	e := newEnv(t)
	seg := e.sealOne("case-1", 4)
	out, err := exec.Command(bin, filepath.Join(e.store.Dir(), "traffic.db"),
		`PRAGMA integrity_check; SELECT name, state, records FROM segments;`).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if want := "ok\n" + seg.Name + "|sealed|4\n"; string(out) != want {
		t.Errorf("sqlite3 = %q; want %q", out, want)
	}
}

func TestSegmentsFilter(t *testing.T) {
	e := newEnv(t)
	base := e.clock.Now()
	a1 := e.sealOne("a", 10) // records base .. base+9s
	e.clock.Add(time.Hour)
	b1 := e.sealOne("b", 10) // base+1h .. +9s
	e.clock.Add(time.Hour)
	a2 := e.sealOne("a", 10) // base+2h .. +9s
	names := func(segs []seal.Segment) string {
		var s []string
		for _, g := range segs {
			s = append(s, g.Name)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		name string
		f    seal.Filter
		want []seal.Segment
	}{
		{"all", seal.Filter{}, []seal.Segment{a1, b1, a2}},
		{"case a", seal.Filter{Case: "a"}, []seal.Segment{a1, a2}},
		{"case none", seal.Filter{Case: "zzz"}, nil},
		{"window inside a1", seal.Filter{From: base.Add(2 * time.Second), To: base.Add(3 * time.Second)}, []seal.Segment{a1}},
		{"window touching a1's last record", seal.Filter{From: base.Add(9 * time.Second), To: base.Add(30 * time.Minute)}, []seal.Segment{a1}},
		{"window between", seal.Filter{From: base.Add(10 * time.Second), To: base.Add(59 * time.Minute)}, nil},
		{"from only", seal.Filter{From: base.Add(90 * time.Minute)}, []seal.Segment{a2}},
		{"to only", seal.Filter{To: base.Add(time.Hour)}, []seal.Segment{a1, b1}},
		{"window and case", seal.Filter{Case: "a", From: base, To: base.Add(3 * time.Hour)}, []seal.Segment{a1, a2}},
		{"state lost", seal.Filter{States: []seal.State{seal.StateLost}}, nil},
		{"state sealed or lost", seal.Filter{States: []seal.State{seal.StateSealed, seal.StateLost}}, []seal.Segment{a1, b1, a2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, want := names(e.segments(c.f)), names(c.want); got != want {
				t.Errorf("Segments(%+v) = [%s]; want [%s]", c.f, got, want)
			}
		})
	}
	u, err := e.store.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Segments != 3 || u.Bytes != a1.Size+b1.Size+a2.Size || u.Open != 0 || u.Lost != 0 {
		t.Errorf("Usage() = %+v; want 3 segments of %d bytes", u, a1.Size+b1.Size+a2.Size)
	}
}

func TestInspectionCreatesNothing(t *testing.T) {
	dataDir := t.TempDir()
	_, err := seal.Open(context.Background(), dataDir, seal.Options{})
	if !errors.Is(err, seal.ErrNoStore) {
		t.Errorf("Open(empty data folder, no recorder) = %v; want ErrNoStore", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("data folder holds %d entries after inspection; want none", len(entries))
	}
}
