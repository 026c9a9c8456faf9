package booking

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestReadSummary(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, path := openTest(t, c)
	t0 := c.now()
	if _, err := s.Start(ctx, StartRequest{PC: "pc-1", Ref: "a", Patron: "0012345678"}); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	if _, err := s.End(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	if _, err := s.Start(ctx, StartRequest{PC: "pc-1", Ref: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSummary(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Bookings: 2, Open: 1, WithPatron: 1, Patrons: 1, FirstStart: t0, LastStart: t0.Add(2 * time.Hour),
		OldestEnd: t0.Add(time.Hour), RetentionRuns: 1, LastRun: t0.Add(2 * time.Hour)}
	if got != want {
		t.Errorf("ReadSummary() = %+v; want %+v", got, want)
	}
	if _, err := ReadSummary(ctx, filepath.Join(t.TempDir(), "none.db")); !errors.Is(err, ErrNotExist) {
		t.Errorf("ReadSummary(missing) = %v; want ErrNotExist", err)
	}
}
