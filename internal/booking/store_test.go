package booking

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/sqlitedb"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)} }
func openTest(t *testing.T, c *clock) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bookings.db")
	s, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32), Now: c.now})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestStartEndList(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := openTest(t, c)
	b, err := s.Start(ctx, StartRequest{PC: "pc-01", Ref: "r1", Patron: "CARD123", PlannedEnd: c.t.Add(time.Hour)})
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	if !b.Start.Equal(c.t) || !b.Open() || !b.HasPatron {
		t.Errorf("Start() = %+v; want open booking at %v with patron", b, c.t)
	}
	if _, err := s.Start(ctx, StartRequest{PC: "pc-01", Ref: "r1"}); !errors.Is(err, ErrAlreadyOpen) {
		t.Errorf("Start(same ref) = %v; want ErrAlreadyOpen", err)
	}
	c.add(30 * time.Minute)
	e, err := s.End(ctx, "r1")
	if err != nil {
		t.Fatalf("End() = %v", err)
	}
	if !e.End.Equal(c.t) || e.Ended != EndedNormally {
		t.Errorf("End() = %+v; want ended at %v", e, c.t)
	}
	if _, err := s.End(ctx, "r1"); !errors.Is(err, ErrNoOpenBooking) {
		t.Errorf("End(already ended) = %v; want ErrNoOpenBooking", err)
	}
	if _, err := s.End(ctx, "nope"); !errors.Is(err, ErrNoOpenBooking) {
		t.Errorf("End(unknown) = %v; want ErrNoOpenBooking", err)
	}
	// The same ref may be booked again once ended.
	c.add(time.Minute)
	if _, err := s.Start(ctx, StartRequest{PC: "pc-01", Ref: "r1"}); err != nil {
		t.Errorf("Start(ref again after end) = %v; want nil", err)
	}
	all, err := s.List(ctx, time.Time{}, time.Time{})
	if err != nil || len(all) != 2 {
		t.Fatalf("List() = %d, %v; want 2", len(all), err)
	}
	if all[0].HasPatron != true || all[1].HasPatron != false {
		t.Errorf("List() patrons = %v, %v; want true, false", all[0].HasPatron, all[1].HasPatron)
	}
	// Window queries: overlap semantics.
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	windows := []struct {
		from, to time.Time
		want     int
	}{
		{start.Add(-time.Hour), start, 0},                       // ends exactly where the first starts
		{start.Add(-time.Hour), start.Add(time.Millisecond), 1}, // touches the first
		{start.Add(30 * time.Minute), time.Time{}, 1},           // from the first's end: only the open one
		{start.Add(29 * time.Minute), time.Time{}, 2},
		{time.Time{}, time.Time{}, 2},
	}
	for _, w := range windows {
		got, err := s.List(ctx, w.from, w.to)
		if err != nil || len(got) != w.want {
			t.Errorf("List(%v, %v) = %d, %v; want %d", w.from, w.to, len(got), err, w.want)
		}
	}
}

func TestPatronStoredOnlyAsHMAC(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, path := openTest(t, c)
	const card = "9876543210CARD"
	if _, err := s.Start(ctx, StartRequest{PC: "pc-01", Ref: "r1", Patron: card}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Read every byte SQLite wrote: the card number must not be there.
	for _, name := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(card)) {
			t.Errorf("%s contains the patron card number in clear", filepath.Base(name))
		}
	}
	s2, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var got []byte
	if err := s2.db.QueryRow(`SELECT patron_hmac FROM bookings`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s2.PatronHMAC(card)) || len(got) != 32 {
		t.Errorf("stored patron = %x; want HMAC-SHA256 %x", got, s2.PatronHMAC(card))
	}
}

// TestByPatron finds exactly the bookings of one card, open and ended,
// and nothing for another card or none.
func TestByPatron(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := openTest(t, c)
	start := func(ref, card string) {
		t.Helper()
		c.add(time.Minute)
		if _, err := s.Start(ctx, StartRequest{PC: "pc-01", Ref: ref, Patron: card}); err != nil {
			t.Fatal(err)
		}
	}
	start("a1", "CARD-A")
	start("b1", "CARD-B")
	start("n1", "")
	mustEnd(t, s, "a1")
	start("a2", "CARD-A")
	start("a1", "CARD-A") // the same reference again, after it ended
	start("b2", "CARD-B")
	start("x1", "CARD-A2") // a card that extends another
	tests := []struct {
		card string
		want string
	}{
		{"CARD-A", "a1 a2 a1"},
		{"CARD-B", "b1 b2"},
		{"CARD-A2", "x1"},
		{"card-a", ""},
		{"UNKNOWN", ""},
	}
	for _, tt := range tests {
		bs, err := s.ByPatron(ctx, tt.card)
		var refs []string
		for _, b := range bs {
			refs = append(refs, b.Ref)
			if !b.HasPatron {
				t.Errorf("ByPatron(%q) gave %+v without a patron", tt.card, b)
			}
		}
		if err != nil || strings.Join(refs, " ") != tt.want || bs == nil {
			t.Errorf("ByPatron(%q) = %q, %v; want %q", tt.card, refs, err, tt.want)
		}
	}
	if bs, _ := s.ByPatron(ctx, "CARD-A"); bs[0].Ended != EndedNormally || !bs[1].Open() {
		t.Errorf("ByPatron(CARD-A) = %+v; want the first ended, the second open", bs)
	}
	for _, bad := range []string{"", "12 34", strings.Repeat("1", 65)} {
		if _, err := s.ByPatron(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ByPatron(%q) = %v; want ErrInvalid", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	now := newClock().t
	ok := StartRequest{PC: "pc-01", Ref: "abc-1.2_3:4"}
	tests := []struct {
		name string
		mod  func(r *StartRequest)
		want string // "" = valid
	}{
		{"valid", func(r *StartRequest) {}, ""},
		{"empty ref", func(r *StartRequest) { r.Ref = "" }, "ref is empty"},
		{"64 ref", func(r *StartRequest) { r.Ref = strings.Repeat("a", 64) }, ""},
		{"65 ref", func(r *StartRequest) { r.Ref = strings.Repeat("a", 65) }, "longer than 64"},
		{"space in ref", func(r *StartRequest) { r.Ref = "a b" }, "may contain only"},
		{"name in ref", func(r *StartRequest) { r.Ref = "Jens Hansen" }, "may contain only"},
		{"unicode ref", func(r *StartRequest) { r.Ref = "å" }, "may contain only"},
		{"no pc", func(r *StartRequest) { r.PC = "" }, "no PC id"},
		{"patron 64", func(r *StartRequest) { r.Patron = strings.Repeat("1", 64) }, ""},
		{"patron 65", func(r *StartRequest) { r.Patron = strings.Repeat("1", 65) }, "longer than 64"},
		{"patron control", func(r *StartRequest) { r.Patron = "12\n3" }, "printable"},
		{"planned in past", func(r *StartRequest) { r.PlannedEnd = now.Add(-time.Second) }, "not after now"},
		{"planned now", func(r *StartRequest) { r.PlannedEnd = now }, "not after now"},
		{"planned 1s", func(r *StartRequest) { r.PlannedEnd = now.Add(time.Second) }, ""},
		{"planned 24h", func(r *StartRequest) { r.PlannedEnd = now.Add(24 * time.Hour) }, ""},
		{"planned 24h+1s", func(r *StartRequest) { r.PlannedEnd = now.Add(24*time.Hour + time.Second) }, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mod(&r)
			err := r.Validate(now)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v; want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.t
	// Three bookings: one ended on day 0, one ended on day 10, one started on
	// day 1 and never ended.
	mustStart(t, s, "old")
	c.add(time.Hour)
	mustEnd(t, s, "old")
	c.t = t0.Add(24 * time.Hour)
	mustStart(t, s, "stale-open")
	c.t = t0.Add(10 * 24 * time.Hour)
	mustStart(t, s, "recent")
	c.add(time.Hour)
	mustEnd(t, s, "recent")

	// Retention 28 days, run on day 29: deletes "old" (ended day 0 + 1h)
	// and "stale-open" (started day 1), keeps "recent".
	c.t = t0.Add(29*24*time.Hour + 2*time.Hour)
	cutoff := c.t.Add(-28 * 24 * time.Hour)
	rep, err := s.Purge(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 2 || !rep.From.Equal(t0) || !rep.To.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("Purge() = %+v; want 2 deleted spanning %v..%v", rep, t0, t0.Add(24*time.Hour))
	}
	left, _ := s.List(ctx, time.Time{}, time.Time{})
	if len(left) != 1 || left[0].Ref != "recent" {
		t.Errorf("after Purge, List() = %+v; want only recent", left)
	}
	// A run that deletes nothing is documented too.
	rep2, err := s.Purge(ctx, cutoff)
	if err != nil || rep2.Deleted != 0 || !rep2.From.IsZero() {
		t.Errorf("second Purge() = %+v, %v; want 0 deleted", rep2, err)
	}
	ev, err := s.PendingEvents(ctx)
	if err != nil || len(ev) != 2 {
		t.Fatalf("PendingEvents() = %d, %v; want 2 retention runs", len(ev), err)
	}
	if ev[0].Kind != "retention" || ev[0].Count != 2 || !ev[0].Cutoff.Equal(cutoff) || ev[1].Count != 0 {
		t.Errorf("PendingEvents() = %+v; want the two runs", ev)
	}
	if err := s.MarkAudited(ctx, ev[0].ID); err != nil {
		t.Fatal(err)
	}
	ev, _ = s.PendingEvents(ctx)
	if len(ev) != 1 {
		t.Errorf("after MarkAudited, PendingEvents() = %d; want 1", len(ev))
	}
	runs, _ := s.RetentionRuns(ctx, t0)
	if len(runs) != 2 {
		t.Errorf("RetentionRuns() = %d; want 2 (documentation is kept after auditing)", len(runs))
	}
}

func TestCloseInterrupted(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, path := openTest(t, c)
	t0 := c.t
	mustStart(t, s, "a")
	c.add(10 * time.Minute)
	if err := s.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	alive := c.t
	c.add(5 * time.Second)
	mustStart(t, s, "b") // started after the last heartbeat
	s.Close()

	c.add(time.Hour) // the service was down for an hour
	s2, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	n, at, err := s2.CloseInterrupted(ctx, InterruptedUncleanStop)
	if err != nil || n != 2 || !at.Equal(alive) {
		t.Fatalf("CloseInterrupted() = %d, %v, %v; want 2 at %v", n, at, err, alive)
	}
	all, _ := s2.List(ctx, time.Time{}, time.Time{})
	if len(all) != 2 {
		t.Fatalf("List() = %d; want 2", len(all))
	}
	if all[0].Ended != EndedInterrupted || !all[0].End.Equal(alive) || !all[0].Start.Equal(t0) {
		t.Errorf("booking a = %+v; want interrupted at the last heartbeat %v", all[0], alive)
	}
	if all[1].Ended != EndedInterrupted || !all[1].End.Equal(all[1].Start) {
		t.Errorf("booking b = %+v; want interrupted at its own start (it began after the heartbeat)", all[1])
	}
	if n, _, _ := s2.CloseInterrupted(ctx, InterruptedReboot); n != 0 {
		t.Errorf("second CloseInterrupted() = %d; want 0", n)
	}
	ev, _ := s2.PendingEvents(ctx)
	if len(ev) != 1 || ev[0].Kind != "interrupted" || ev[0].Count != 2 || ev[0].Reason != InterruptedUncleanStop {
		t.Errorf("PendingEvents() = %+v; want one interrupted event of 2, reason %s", ev, InterruptedUncleanStop)
	}
}

// TestBootIsKept: the boot the service ran in survives a reopen of the
// register (a clean stop and a restart of the PC), and heartbeats do not
// erase it.
func TestBootIsKept(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, path := openTest(t, c)
	if a, err := s.LastAlive(ctx); err != nil || !a.At.IsZero() || a.Boot != "" {
		t.Errorf("LastAlive(new register) = %+v, %v; want zero", a, err)
	}
	if err := s.MarkBoot(ctx, "boot-a"); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	if err := s.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if a, err := s2.LastAlive(ctx); err != nil || !a.At.Equal(c.t) || a.Boot != "boot-a" {
		t.Errorf("LastAlive() after reopen = %+v, %v; want boot-a at %v", a, err, c.t)
	}
}

// TestUpgradeFromSchema1 opens a register written by the first schema (no
// boot, no reason) and finds its bookings, heartbeat and events intact.
func TestUpgradeFromSchema1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bookings.db")
	db, err := sqlitedb.Open(ctx, path, migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO bookings (pc_id, ref, start_ms) VALUES ('pc-01', 'old-open', 1000)`,
		`INSERT INTO alive (id, at_ms) VALUES (1, 5000)`,
		`INSERT INTO events (kind, at_ms, count) VALUES ('interrupted', 4000, 3)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	c := newClock()
	s, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32), Now: c.now})
	if err != nil {
		t.Fatalf("Open(schema 1) = %v", err)
	}
	defer s.Close()
	a, err := s.LastAlive(ctx)
	if err != nil || a.At.UnixMilli() != 5000 || a.Boot != "" {
		t.Errorf("LastAlive() = %+v, %v; want 5000 ms and no boot", a, err)
	}
	ev, err := s.PendingEvents(ctx)
	if err != nil || len(ev) != 1 || ev[0].Reason != "" || ev[0].Count != 3 {
		t.Errorf("PendingEvents() = %+v, %v; want the old event without a reason", ev, err)
	}
	bs, _ := s.List(ctx, time.Time{}, time.Time{})
	if len(bs) != 1 || !bs[0].Open() {
		t.Errorf("List() = %+v; want the open booking", bs)
	}
}

func TestEndNeverBeforeStart(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := openTest(t, c)
	mustStart(t, s, "r")
	c.add(-time.Hour) // the clock stepped back
	b, err := s.End(ctx, "r")
	if err != nil || b.End.Before(b.Start) {
		t.Errorf("End() after clock step back = %+v, %v; want end == start", b, err)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "patron.key")
	a, created, err := LoadOrCreateSecret(p)
	if err != nil || !created || len(a) != 32 {
		t.Fatalf("LoadOrCreateSecret(new) = %d bytes, %v, %v; want 32, created", len(a), created, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret mode = %v; want 0600", fi.Mode().Perm())
	}
	b, created, err := LoadOrCreateSecret(p)
	if err != nil || created || !bytes.Equal(a, b) {
		t.Errorf("LoadOrCreateSecret(existing) = created %v, %v, same %v; want the same key", created, err, bytes.Equal(a, b))
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateSecret(p); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("LoadOrCreateSecret(damaged) = %v; want an error saying so", err)
	}
	if _, err := Open(filepath.Join(dir, "b.db"), Options{Secret: []byte("x")}); err == nil {
		t.Error("Open(short secret) = nil; want error")
	}
}

func TestSchemaTooNew(t *testing.T) {
	c := newClock()
	s, path := openTest(t, c)
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(path, Options{Secret: bytes.Repeat([]byte{7}, 32)})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open(schema 99) = %v; want an error saying the schema is newer", err)
	}
}

func mustStart(t *testing.T, s *Store, ref string) {
	t.Helper()
	if _, err := s.Start(context.Background(), StartRequest{PC: "pc-01", Ref: ref}); err != nil {
		t.Fatalf("Start(%q) = %v", ref, err)
	}
}

func mustEnd(t *testing.T, s *Store, ref string) {
	t.Helper()
	if _, err := s.End(context.Background(), ref); err != nil {
		t.Fatalf("End(%q) = %v", ref, err)
	}
}
