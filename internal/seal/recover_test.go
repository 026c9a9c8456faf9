package seal_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

// These tests put the traffic folder in each state a crash can leave, by
// hand, and check what the next Open makes of it. crash_test.go kills a
// real writer at random points.

func (e *env) closeAndExec(query string, args ...any) {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", filepath.Join(e.dataDir, "traffic", "traffic.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		e.t.Fatal(err)
	}
}

func TestRecoverFinishesARenameCutShort(t *testing.T) {
	e := newEnv(t)
	seg := e.sealOne("c", 20)
	path, _ := e.store.Path(seg.Name)
	e.store.Close()
	if err := os.Rename(path, path+".partial"); err != nil {
		t.Fatal(err)
	}
	e.store = e.open()
	if err := e.store.Check(context.Background(), seg.Name); err != nil {
		t.Errorf("Check() after recovery = %v; want nil", err)
	}
	if n := len(e.rec.of(audit.SegmentLost)); n != 0 {
		t.Errorf("segment.lost entries = %d; want 0", n)
	}
}

func TestRecoverLeavesAMismatchedPartialForCheck(t *testing.T) {
	e := newEnv(t)
	seg := e.sealOne("c", 20)
	path, _ := e.store.Path(seg.Name)
	e.store.Close()
	os.Remove(path)
	if err := os.WriteFile(path+".partial", []byte("not what was sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.store = e.open()
	if err := e.store.Check(context.Background(), seg.Name); !errors.Is(err, seal.ErrCorrupt) {
		t.Errorf("Check() = %v; want ErrCorrupt", err)
	}
	if _, err := os.Stat(path + ".partial"); err != nil {
		t.Errorf("mismatched partial: %v; want it kept for inspection", err)
	}
}

func TestRecoverMarksAnOpenRowWithoutFileLost(t *testing.T) {
	e := newEnv(t)
	const name = "c-20240501T115900.000Z-00000007.jsonl.age"
	e.closeAndExec(`INSERT INTO segments (name, seq, case_id, format, state, opened_at) VALUES (?, 7, 'c', 'jsonl', 'open', 0)`, name)
	e.store = e.open()
	segs := e.segments(seal.Filter{})
	if len(segs) != 1 || segs[0].State != seal.StateLost || segs[0].Size != 0 || segs[0].EndedAt.IsZero() {
		t.Errorf("Segments() = %+v; want %s lost with size 0", segs, name)
	}
	if ev := e.rec.of(audit.SegmentLost); len(ev) != 1 || field(ev[0], "name") != name || field(ev[0], "size") != "0" {
		t.Errorf("segment.lost entries = %+v; want one for %s, size 0", ev, name)
	}
	if _, err := e.store.Hold(context.Background(), "BS-1", []string{name}); err == nil || !strings.Contains(err.Error(), "only sealed segments") {
		t.Errorf("Hold(lost segment) = %v; want refused", err)
	}
}

func TestRecoverAdoptsAnOrphanPartial(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	const name = "orphan-20240501T100000.000Z-00000042.pcapng.age"
	dir := filepath.Join(e.dataDir, "traffic")
	if err := os.WriteFile(filepath.Join(dir, name+".partial"), make([]byte, 1234), 0o600); err != nil {
		t.Fatal(err)
	}
	// Files that are not segments are left alone.
	for _, other := range []string{"notes.txt", "x.partial", "README.age", "stray-20240501T100000.000Z-00000050.jsonl.age"} {
		os.WriteFile(filepath.Join(dir, other), []byte("keep"), 0o600)
	}
	e.store = e.open()
	segs := e.segments(seal.Filter{})
	if len(segs) != 1 || segs[0].Name != name || segs[0].State != seal.StateLost || segs[0].Size != 1234 ||
		segs[0].Case != "orphan" || segs[0].Format != seal.PCAPNG || segs[0].Seq != 42 {
		t.Errorf("Segments() = %+v; want %s lost, 1234 bytes", segs, name)
	}
	if ev := e.rec.of(audit.SegmentLost); len(ev) != 1 || field(ev[0], "size") != "1234" {
		t.Errorf("segment.lost entries = %+v; want one of size 1234", ev)
	}
	if _, err := os.Stat(filepath.Join(dir, name+".partial")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan partial: %v; want removed", err)
	}
	for _, other := range []string{"notes.txt", "x.partial", "README.age", "stray-20240501T100000.000Z-00000050.jsonl.age"} {
		if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
			t.Errorf("%s: %v; want it left alone", other, err)
		}
	}
	// New segments continue after the adopted sequence number.
	seg := e.sealOne("c", 1)
	if seg.Seq != 43 {
		t.Errorf("next segment's seq = %d; want 43", seg.Seq)
	}
}

func TestRecoverFinishesAPurgeCutShort(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	seg := e.sealOne("c", 3)
	path, _ := e.store.Path(seg.Name)
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := e.clock.Now()
	if p, err := e.store.Purge(ctx, end, func(string) (time.Time, bool) { return end, true }, 0); err != nil || p.Deleted != 1 {
		t.Fatalf("Purge() = %+v, %v", p, err)
	}
	e.store.Close()
	// As if the process died after the index said deleted, before the unlink.
	os.WriteFile(path, saved, 0o600)
	e.store = e.open()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file of a deleted segment after recovery: %v; want removed", err)
	}
}
