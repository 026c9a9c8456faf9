package misuse

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// TestTrafficRetention seals real segments for two cases, then lets time
// pass: a case still in the config is purged retention after its end; a
// case whose table was deleted from the config is purged retention after
// its last record — its traffic must not outlive retention because the
// table is gone — and every purge is audited.
func TestTrafficRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log, err := audit.OpenIn(dir, "carrel/pc-01", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	now := t0
	clock := func() time.Time { return now }
	store, err := seal.Open(ctx, dir, seal.Options{Recorder: log, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"kept-in-config", "removed"} {
		w, err := store.NewWriter(seal.WriterOptions{Case: id, Format: seal.JSONL, Recipients: []string{recipient}, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]byte(`{"kind":"dns","ts":"2026-03-01T09:00:00Z","name":"x.example"}`+"\n"), now); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	inConfig := valid()
	inConfig.ID, inConfig.End = "kept-in-config", t0.Add(10*24*time.Hour)
	cfg := cfgWith(inConfig)
	cfg.Capture.TrafficRetention = config.Duration(30 * 24 * time.Hour)
	c := New(Options{DataDir: dir, Audit: log, Now: clock, Log: slog.New(slog.DiscardHandler)})
	c.cfg = cfg
	if err := c.openExistingStore(ctx); err != nil || c.store == nil {
		t.Fatalf("openExistingStore() = %v; want the existing store opened", err)
	}
	defer c.store.Close()
	sealed := func() map[string]bool {
		segs, err := c.store.Segments(ctx, seal.Filter{States: []seal.State{seal.StateSealed}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, s := range segs {
			out[s.Case] = true
		}
		return out
	}
	steps := []struct {
		at   time.Duration
		want map[string]bool
	}{
		{29 * 24 * time.Hour, map[string]bool{"kept-in-config": true, "removed": true}},
		{30*24*time.Hour + time.Minute, map[string]bool{"kept-in-config": true}}, // removed: last record + 30d passed
		{40*24*time.Hour - time.Minute, map[string]bool{"kept-in-config": true}}, // case end + 30d not yet
		{40*24*time.Hour + time.Minute, map[string]bool{}},
	}
	for _, s := range steps {
		now = t0.Add(s.at)
		c.purge(ctx)
		got := sealed()
		if len(got) != len(s.want) || got["kept-in-config"] != s.want["kept-in-config"] || got["removed"] != s.want["removed"] {
			t.Errorf("after purge at t0+%v: sealed cases %v; want %v", s.at, got, s.want)
		}
	}
	es, err := log.Entries(ctx, audit.Query{Kinds: []audit.Kind{audit.TrafficRetention}})
	if err != nil || len(es) != 2 {
		t.Errorf("traffic.retention entries = %d, %v; want 2 (one per purge that deleted something)", len(es), err)
	}
}

// TestNoStoreWithoutCapture: with no traffic store yet, starting the
// controller creates nothing under traffic/ (G1).
func TestNoStoreWithoutCapture(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{DataDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err := c.openExistingStore(context.Background()); err != nil || c.store != nil {
		t.Fatalf("openExistingStore() on an empty folder = %v, store %v; want nothing opened", err, c.store)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("files created: %v", m)
	}
}
