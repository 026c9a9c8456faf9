package seal_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

func TestPurgeKeepsHeldRunningAndUnknownCases(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	base := e.clock.Now()
	ended := e.sealOne("ended", 5)     // case ended 10 days ago
	endedHeld := e.sealOne("ended", 5) // same case, under a legal hold
	recent := e.sealOne("recent", 5)   // case ended 1 day ago
	running := e.sealOne("running", 5) // case still running
	unknown := e.sealOne("gone", 5)    // case the caller knows nothing about
	if _, err := e.store.Hold(ctx, "BS-77/2024", []string{endedHeld.Name}); err != nil {
		t.Fatal(err)
	}
	now := base.Add(30 * 24 * time.Hour)
	ends := map[string]time.Time{"ended": now.Add(-10 * 24 * time.Hour), "recent": now.Add(-24 * time.Hour)}
	caseEnd := func(id string) (time.Time, bool) { t, ok := ends[id]; return t, ok }

	p, err := e.store.Purge(ctx, now, caseEnd, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p.Deleted != 1 || p.Bytes != ended.Size || !p.From.Equal(ended.From) || !p.To.Equal(ended.To) {
		t.Errorf("Purge() = %+v; want 1 segment of %d bytes from %v to %v", p, ended.Size, ended.From, ended.To)
	}
	state := map[string]seal.State{}
	for _, s := range e.segments(seal.Filter{}) {
		state[s.Name] = s.State
	}
	for _, c := range []struct {
		seg  seal.Segment
		want seal.State
	}{
		{ended, seal.StateDeleted}, {endedHeld, seal.StateSealed}, {recent, seal.StateSealed},
		{running, seal.StateSealed}, {unknown, seal.StateSealed},
	} {
		if state[c.seg.Name] != c.want {
			t.Errorf("state of %s = %s; want %s", c.seg.Name, state[c.seg.Name], c.want)
		}
		path, _ := e.store.Path(c.seg.Name)
		_, err := os.Stat(path)
		if exists := err == nil; exists != (c.want == seal.StateSealed) {
			t.Errorf("file of %s exists = %v; want %v", c.seg.Name, exists, c.want == seal.StateSealed)
		}
	}
	ev := e.rec.of(audit.TrafficRetention)
	if len(ev) != 1 || field(ev[0], "deleted") != "1" || field(ev[0], "bytes") != strconv.FormatInt(ended.Size, 10) ||
		field(ev[0], "from") != ended.From.Format(time.RFC3339Nano) || field(ev[0], "to") != ended.To.Format(time.RFC3339Nano) {
		t.Errorf("traffic.retention entries = %+v; want deleted 1 with its bytes and time range", ev)
	}
	u, _ := e.store.Usage(ctx)
	if u.Segments != 4 {
		t.Errorf("Usage().Segments = %d; want 4", u.Segments)
	}

	// Nothing more to delete: no entry.
	if p, err := e.store.Purge(ctx, now, caseEnd, 7*24*time.Hour); err != nil || p.Deleted != 0 {
		t.Errorf("second Purge() = %+v, %v; want nothing deleted", p, err)
	}
	if n := len(e.rec.of(audit.TrafficRetention)); n != 1 {
		t.Errorf("traffic.retention entries = %d; want still 1", n)
	}

	// Releasing the order lets the next run delete the held segment.
	n, err := e.store.Release(ctx, "BS-77/2024")
	if err != nil || n != 1 {
		t.Fatalf("Release() = %d, %v; want 1", n, err)
	}
	if p, err := e.store.Purge(ctx, now, caseEnd, 7*24*time.Hour); err != nil || p.Deleted != 1 {
		t.Errorf("Purge() after release = %+v, %v; want the held segment deleted", p, err)
	}
}

func TestPurgeRetentionBoundary(t *testing.T) {
	for _, c := range []struct {
		sinceEnd time.Duration
		want     int
	}{
		{7*24*time.Hour - time.Nanosecond, 0}, {7 * 24 * time.Hour, 1}, {8 * 24 * time.Hour, 1},
	} {
		e := newEnv(t)
		e.sealOne("c", 1)
		end := e.clock.Now().Add(time.Hour)
		p, err := e.store.Purge(context.Background(), end.Add(c.sinceEnd),
			func(string) (time.Time, bool) { return end, true }, 7*24*time.Hour)
		if err != nil || p.Deleted != c.want {
			t.Errorf("Purge(end+%v) = %+v, %v; want %d deleted", c.sinceEnd, p, err, c.want)
		}
	}
}

func TestHoldAndReleaseAudit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.sealOne("c", 1)
	b := e.sealOne("c", 1)
	const ref = "Retten i Aarhus BS-12/2024"
	n, err := e.store.Hold(ctx, ref, []string{a.Name, b.Name, a.Name})
	if err != nil || n != 2 {
		t.Fatalf("Hold() = %d, %v; want 2", n, err)
	}
	if _, err := e.store.Hold(ctx, "other order", []string{a.Name}); err != nil {
		t.Fatal(err)
	}
	segs := e.segments(seal.Filter{})
	if got := strings.Join(segs[0].Holds, "|"); got != ref+"|other order" {
		t.Errorf("holds of %s = %q; want both orders", a.Name, got)
	}
	n, err = e.store.Release(ctx, "  "+ref+"\n") // as typed, with stray space
	if err != nil || n != 2 {
		t.Fatalf("Release() = %d, %v; want 2", n, err)
	}
	if segs := e.segments(seal.Filter{}); len(segs[0].Holds) != 1 || len(segs[1].Holds) != 0 {
		t.Errorf("holds after release = %v, %v; want only the other order's", segs[0].Holds, segs[1].Holds)
	}
	if _, err := e.store.Release(ctx, ref); !errors.Is(err, seal.ErrNoHold) {
		t.Errorf("second Release() = %v; want ErrNoHold", err)
	}

	sum := sha256.Sum256([]byte(ref))
	placed, released := e.rec.of(audit.HoldPlaced), e.rec.of(audit.HoldReleased)
	if len(placed) != 2 || field(placed[0], "order_sha256") != hex.EncodeToString(sum[:]) || field(placed[0], "segments") != "2" {
		t.Errorf("hold.placed entries = %+v; want 2, the first for 2 segments under the order's SHA-256", placed)
	}
	if len(released) != 1 || field(released[0], "order_sha256") != hex.EncodeToString(sum[:]) || field(released[0], "segments") != "2" {
		t.Errorf("hold.released entries = %+v; want 1 for 2 segments", released)
	}
	for _, ev := range append(placed, released...) {
		for _, f := range ev.Fields {
			if strings.Contains(f.Value, "Aarhus") {
				t.Errorf("%s carries the order reference in clear: %+v", ev.Kind, f)
			}
		}
	}
}

func TestHoldRefuses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	seg := e.sealOne("c", 1)
	for _, c := range []struct {
		name  string
		ref   string
		names []string
		want  string
	}{
		{"empty order", " ", []string{seg.Name}, "1 to 200 bytes"},
		{"control characters", "BS\x1b[2J", []string{seg.Name}, "control characters"},
		{"no segments", "BS-1", nil, "no segments named"},
		{"unknown segment", "BS-1", []string{seg.Name, "c-20240501T120000.000Z-00000099.jsonl.age"}, "not in the traffic index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := e.store.Hold(ctx, c.ref, c.names); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Hold(%q, %v) = %v; want %q", c.ref, c.names, err, c.want)
			}
		})
	}
	// A refused hold places nothing, not even on the valid names.
	if segs := e.segments(seal.Filter{}); len(segs[0].Holds) != 0 || len(e.rec.of(audit.HoldPlaced)) != 0 {
		t.Errorf("after refused holds: holds %v, %d entries; want none", segs[0].Holds, len(e.rec.of(audit.HoldPlaced)))
	}
}

// The daemon's CaseEnd looks up a removed case's last record with
// Segments while Purge holds its transaction: that must not deadlock.
func TestPurgeCaseEndMayReadTheIndex(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	seg := e.sealOne("removed", 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		caseEnd := func(id string) (time.Time, bool) {
			segs, err := e.store.Segments(ctx, seal.Filter{Case: id})
			if err != nil || len(segs) == 0 {
				return time.Time{}, false
			}
			return segs[len(segs)-1].To, true
		}
		p, err := e.store.Purge(ctx, seg.To.Add(8*24*time.Hour), caseEnd, 7*24*time.Hour)
		if err != nil || p.Deleted != 1 {
			t.Errorf("Purge() = %+v, %v; want the removed case's segment deleted", p, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Purge with a CaseEnd that reads the index did not return")
	}
}

// TestReleaseSome: an export that failed lifts only the holds it placed;
// the order's other holds stay.
func TestReleaseSome(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.sealOne("c", 1)
	b := e.sealOne("c", 1)
	const ref = "BS-12/2024"
	if _, err := e.store.Hold(ctx, ref, []string{a.Name, b.Name}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.Release(ctx, ref, b.Name, "no-such-segment"); err != nil || n != 1 {
		t.Fatalf("Release(%s) = %d, %v; want 1", b.Name, n, err)
	}
	if segs := e.segments(seal.Filter{}); len(segs[0].Holds) != 1 || len(segs[1].Holds) != 0 {
		t.Errorf("holds after releasing %s = %v, %v; want only %s's", b.Name, segs[0].Holds, segs[1].Holds, a.Name)
	}
	if _, err := e.store.Release(ctx, ref, b.Name); !errors.Is(err, seal.ErrNoHold) {
		t.Errorf("Release(%s) again = %v; want ErrNoHold", b.Name, err)
	}
}
