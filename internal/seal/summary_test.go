package seal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/seal"
)

func TestReadSummary(t *testing.T) {
	ctx := context.Background()
	if _, err := seal.ReadSummary(ctx, t.TempDir()); !errors.Is(err, seal.ErrNoStore) {
		t.Fatalf("ReadSummary(empty folder) = %v; want ErrNoStore", err)
	}
	e := newEnv(t)
	t0 := e.clock.Now()
	for i, c := range []string{"case-a", "case-a", "case-b"} {
		w := e.writer(seal.WriterOptions{Case: c})
		if err := w.Write(jsonRecord(i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	segs := e.segments(seal.Filter{Case: "case-a"})
	if _, err := e.store.Hold(ctx, "BS-1/2026", []string{segs[0].Name}); err != nil {
		t.Fatal(err)
	}
	ended := func(id string) (time.Time, bool) { return t0, id == "case-b" }
	if _, err := e.store.Purge(ctx, t0.Add(48*time.Hour), ended, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := seal.ReadSummary(ctx, e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cases) != 2 || len(got.Holds) != 1 {
		t.Fatalf("ReadSummary() = %+v; want 2 cases and 1 hold", got)
	}
	a, b := got.Cases[0], got.Cases[1]
	if a.Case != "case-a" || a.Sealed != 2 || a.SealedRecords != 2 || a.HeldSegments != 1 || a.Deleted != 0 ||
		!a.From.Equal(t0) || !a.To.Equal(t0.Add(time.Minute)) || a.SealedBytes != segs[0].Size+segs[1].Size {
		t.Errorf("case-a = %+v", a)
	}
	if b.Case != "case-b" || b.Sealed != 0 || b.Deleted != 1 || b.DeletedBytes == 0 || !b.From.IsZero() {
		t.Errorf("case-b = %+v", b)
	}
	h := got.Holds[0]
	if h.OrderRef != "BS-1/2026" || h.Segments != 1 || h.Bytes != segs[0].Size || len(h.OrderSHA256) != 64 {
		t.Errorf("hold = %+v", h)
	}
}
