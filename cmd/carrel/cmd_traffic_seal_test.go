package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

// sealDemo seals two segments of case "c-1" under dir/data, the first held
// under order BS-1/2024, with the real audit log.
func sealDemo(t *testing.T, dataDir string) []seal.Segment {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	log, err := audit.OpenIn(dataDir, "carrel/pc-e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	store, err := seal.Open(ctx, dataDir, seal.Options{Recorder: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recipient, err := seal.WriteIdentityFile(filepath.Join(t.TempDir(), "k"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.NewWriter(seal.WriterOptions{Case: "c-1", Format: seal.JSONL, Recipients: []string{recipient}, MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if err := w.Write([]byte(`{"kind":"dns","name":"secret-site.example"}`+"\n"), time.Date(2026, 3, 1, 10, i, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			w.Cut()
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := store.Segments(ctx, seal.Filter{})
	if err != nil || len(segs) != 2 {
		t.Fatalf("Segments() = %v, %v", segs, err)
	}
	if _, err := store.Hold(ctx, "BS-1/2024", []string{segs[0].Name}); err != nil {
		t.Fatal(err)
	}
	segs, _ = store.Segments(ctx, seal.Filter{})
	return segs
}

func TestTrafficListAndRelease(t *testing.T) {
	dir, cfg := demo(t, nil)
	segs := sealDemo(t, filepath.Join(dir, "data"))

	out, code := carrelRun(t, "traffic", "list", "--config", cfg)
	if code != 0 {
		t.Fatalf("traffic list = %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CASE ") {
		t.Fatalf("traffic list = %q; want a header and 2 rows", out)
	}
	for i, want := range [][]string{
		{"c-1", "2026-03-01 10:00:00 UTC", "2026-03-01 10:02:00 UTC", " 3 ", "sealed", segs[0].SHA256[:16], "BS-1/2024", segs[0].Name},
		{"c-1", "2026-03-01 10:03:00 UTC", "2026-03-01 10:05:00 UTC", " 3 ", "sealed", segs[1].SHA256[:16], " - ", segs[1].Name},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("traffic list row %d = %q; want it to contain %q", i+1, lines[i+1], w)
			}
		}
	}
	if strings.Contains(out, "secret-site") {
		t.Error("traffic list shows content")
	}

	out, code = carrelRun(t, "traffic", "list", "--json", "--case", "c-1", "--from", "2026-03-01T10:04:00Z", "--config", cfg)
	var got []segmentJSON
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("traffic list --json = %d, %v: %s", code, err, out)
	}
	if len(got) != 1 || got[0].Name != segs[1].Name || got[0].SHA256 != segs[1].SHA256 || got[0].Records != 3 ||
		got[0].Size != segs[1].Size || got[0].State != "sealed" || got[0].Holds == nil || len(got[0].Holds) != 0 {
		t.Errorf("traffic list --json --from = %+v; want the second segment, unheld", got)
	}

	out, code = carrelRun(t, "traffic", "release", "--order", "BS-1/2024", "--config", cfg)
	if code != 0 || !strings.Contains(out, "released the legal hold on 1 segment(s)") {
		t.Errorf("traffic release = %d: %s", code, out)
	}
	out, code = carrelRun(t, "traffic", "release", "--order", "BS-1/2024", "--config", cfg)
	if code != 1 || !strings.Contains(out, "no legal hold under this order") || !strings.Contains(out, "hint: ") {
		t.Errorf("second traffic release = %d: %s; want exit 1 with a hint", code, out)
	}

	// The release is in the audit log, the order only as its SHA-256.
	log, err := audit.Open(filepath.Join(dir, "data", "audit.db"), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ents, err := log.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.HoldReleased}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("BS-1/2024"))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Actor, "uid:") || !hasField(ents[0], "order_sha256", hex.EncodeToString(sum[:])) ||
		!hasField(ents[0], "segments", "1") {
		t.Errorf("hold.released entries = %+v; want one by uid:N for 1 segment with the order's SHA-256", ents)
	}
}

func hasField(e audit.Entry, key, value string) bool {
	v, ok := e.Value(key)
	return ok && v == value
}

func TestTrafficListWithoutStoreAndUsage(t *testing.T) {
	dir, cfg := demo(t, nil)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"traffic", "list", "--config", cfg}, 0, "no sealed traffic: no capture has run"},
		{[]string{"traffic", "list", "--json", "--config", cfg}, 0, "[]"},
		{[]string{"traffic", "list", "x", "--config", cfg}, 2, "takes no arguments"},
		{[]string{"traffic", "release", "--config", cfg}, 2, "needs --order REF"},
		{[]string{"traffic", "release", "--order", " ", "--config", cfg}, 2, "needs --order REF"},
		{[]string{"traffic", "list", "--config", filepath.Join(dir, "missing.toml")}, 1, "not found"},
		{[]string{"traffic", "release", "--order", "BS-1", "--config", cfg}, 1, "no traffic store: nothing has been captured"},
	} {
		out, code := carrelRun(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("carrel %s = %d: %q; want %d and %q", strings.Join(c.args, " "), code, out, c.code, c.want)
		}
	}
}
