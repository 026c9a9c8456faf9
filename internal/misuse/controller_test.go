package misuse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// step sets the clock to t0+at and hands the controller ev, as Run would.
// A shutdown comes with Run's context already cancelled. After the step it
// checks what must always hold: the engine runs only while Decide says
// capture for this moment, and only under the case Decide chose (G1, G2);
// status says capture is on exactly when a run is under way.
func (r *rig) step(at time.Duration, ev event) time.Time {
	r.t.Helper()
	r.clock.set(t0.Add(at))
	ctx := context.Background()
	if ev.kind == evShutdown {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		ctx = cctx
	}
	wake := r.c.step(ctx, ev)
	r.check(ev)
	return wake
}

func (r *rig) check(ev event) {
	r.t.Helper()
	now := r.clock.Now()
	d := Decide(r.c.cfg, r.c.cfg.PC.ID, now)
	running := r.eng.isRunning()
	if running && !d.Capture {
		r.t.Fatalf("at %s the engine runs, but Decide says no capture: %s", now.Format(time.RFC3339), d.Reason)
	}
	if running && (r.c.running == nil || r.c.running.k.caseID != d.Case.ID) {
		r.t.Fatalf("at %s the engine runs under %v; Decide chose case %s", now.Format(time.RFC3339), r.c.running, d.Case.ID)
	}
	if st := r.c.Status(); st.On != (r.c.running != nil) {
		r.t.Fatalf("status On = %v while a run is under way = %v", st.On, r.c.running != nil)
	}
	if ev.kind == evShutdown && (running || r.c.running != nil || r.c.store != nil) {
		r.t.Fatalf("after shutdown: engine running %v, session %v, store open %v", running, r.c.running, r.c.store != nil)
	}
}

// tstep is one event in a transition table.
type tstep struct {
	at     time.Duration // the clock, from t0
	ev     eventKind
	cfg    *config.Config // of evBegin and evConfig
	before func(r *rig)   // what happens before the event: the engine fails, a start will fail
	want   []string       // what the controller does, in order
	on     bool           // capture runs after the step
	reason string         // a substring of the status reason, when set
	wake   time.Duration  // when set, the time step must ask to be woken at, from t0
}

const (
	hour = time.Hour
	day  = 24 * time.Hour
	minu = time.Minute
	sec  = time.Second
)

func TestControllerTransitions(t *testing.T) {
	cf := func(edit func(string) string, cases ...tcase) *config.Config {
		var tables []string
		for _, c := range cases {
			tables = append(tables, c.String())
		}
		return conf(t, edit, tables...)
	}
	a := tcase{id: "2026-a"}
	none := cf(nil)
	withA := cf(nil, a)
	accepted := []string{"case.accepted 2026-a", "checkpoint"}
	started := []string{"engine.start 2026-a metadata eth-test", "capture.start 2026-a", "checkpoint"}
	stopped := func(why string) []string {
		return []string{"engine.stop", "capture.stop 2026-a " + why, "checkpoint"}
	}
	// begin starts the rig at t0+1h with case a in force and capturing.
	begin := tstep{at: hour, ev: evBegin, cfg: withA, want: cat(accepted, started), on: true, wake: hour + 30*sec}
	failWith := func(err error) func(*rig) { return func(r *rig) { r.eng.fail(err) } }
	setting := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}

	tests := []struct {
		name  string
		steps []tstep
	}{
		{"no case: nothing opened, nothing recorded", []tstep{
			{at: 0, ev: evBegin, cfg: none, want: nil, reason: "no misuse case is declared", wake: 30 * sec},
			{at: 30 * sec, ev: evWake, want: nil, wake: 60 * sec},
		}},
		{"a config with a case in force starts capture", []tstep{
			{at: 0, ev: evBegin, cfg: none},
			{at: minu, ev: evConfig, cfg: withA, want: cat(accepted, started), on: true, reason: "case 2026-a is in force"},
		}},
		{"refused and other cases never capture (G1)", []tstep{
			{at: hour, ev: evBegin, cfg: cf(nil,
				tcase{id: "no-approver", approvedBy: "-"},
				tcase{id: "same-person", approvedBy: "anne\u200b berg"},
				tcase{id: "too-long", end: t0.Add(31 * day)},
				tcase{id: "other-pc", pcs: `"pc-02"`},
				tcase{id: "future", start: t0.Add(2 * hour)},
				tcase{id: "over", start: t0.Add(-2 * day), end: t0.Add(-day)}),
				want: []string{"case.rejected no-approver …", "case.rejected same-person …", "case.rejected too-long …",
					"case.accepted other-pc", "case.accepted future", "case.accepted over", "checkpoint"},
				reason: "approved_by: missing", wake: hour + 30*sec},
		}},
		{"the case's start is reached", []tstep{
			{at: 0, ev: evBegin, cfg: cf(nil, tcase{id: "2026-a", start: t0.Add(hour)}), want: accepted, reason: "starts at", wake: 30 * sec},
			{at: hour - sec, ev: evWake, want: nil, wake: hour},
			{at: hour, ev: evWake, want: started, on: true},
		}},
		{"the case's end is reached without a config change (G2)", []tstep{
			begin,
			{at: 10*day - sec, ev: evWake, want: nil, on: true, wake: 10 * day},
			{at: 10 * day, ev: evWake, want: stopped("case-ended"), reason: "ended at"},
			{at: 10*day + 30*sec, ev: evWake, want: nil},
		}},
		{"ended early with ended_at", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(nil, tcase{id: "2026-a", endedAt: t0.Add(3 * hour)}),
				want: accepted, on: true, wake: 2*hour + 30*sec},
			{at: 3*hour - 10*sec, ev: evWake, want: nil, on: true, wake: 3 * hour},
			{at: 3 * hour, ev: evWake, want: stopped("case-ended"), reason: "ended at"},
		}},
		{"ended at once by an ended_at in the past", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(nil, tcase{id: "2026-a", endedAt: t0.Add(90 * minu)}),
				want: cat(accepted, stopped("case-ended"))},
		}},
		{"the approver is removed", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(nil, tcase{id: "2026-a", approvedBy: "-"}),
				want: cat([]string{"case.rejected 2026-a …", "checkpoint"}, stopped("case-refused")), reason: "approved_by: missing"},
		}},
		{"the case is removed from the file", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: none, want: stopped("case-removed")},
		}},
		{"the PC is taken out of the case's scope", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(nil, tcase{id: "2026-a", pcs: `"pc-02"`}),
				want: cat(accepted, stopped("out-of-scope")), reason: "not in its scope"},
		}},
		{"the mode changes: capture restarts in it", []tstep{
			// packets mode reads the interface's link type for the pcapng
			// header: lo exists on every Linux machine.
			{at: hour, ev: evBegin, cfg: cf(setting(`"eth-test"`, `"lo"`), a), want: cat(accepted, []string{"engine.start 2026-a metadata lo", "capture.start 2026-a", "checkpoint"}), on: true},
			{at: 2 * hour, ev: evConfig, cfg: cf(setting(`"eth-test"`, `"lo"`), tcase{id: "2026-a", mode: "packets", extra: "snaplen = 256\n"}),
				want: cat(accepted, stopped("settings-changed"), []string{"engine.start 2026-a packets lo", "capture.start 2026-a", "checkpoint"}), on: true},
		}},
		{"packets mode on an interface that is gone: capture.error", []tstep{
			{at: hour, ev: evBegin, cfg: cf(setting(`"eth-test"`, `"carrel-gone0"`), tcase{id: "2026-a", mode: "packets", extra: "snaplen = 256\n"}),
				want: cat(accepted, []string{"capture.error 2026-a …"}), reason: "capture could not start", wake: hour + 5*sec},
		}},
		{"the interface changes: capture restarts on it", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(setting(`"eth-test"`, `"eth-other"`), a),
				want: cat(stopped("settings-changed"), []string{"engine.start 2026-a metadata eth-other", "capture.start 2026-a", "checkpoint"}), on: true},
		}},
		{"a change that does not touch capture leaves it running", []tstep{
			begin,
			{at: 2 * hour, ev: evConfig, cfg: cf(func(s string) string { return s + "[library]\nname = \"Other\"\n" }, a), want: nil, on: true},
			{at: 2 * hour, ev: evConfig, cfg: withA, want: nil, on: true},
		}},
		{"the engine fails: retried after a backoff", []tstep{
			begin,
			{at: 2 * hour, ev: evEngineDone, before: failWith(errors.New("reading packets on eth-test: network is down")),
				want:   []string{"capture.stop 2026-a error", "checkpoint", "capture.error 2026-a …"},
				reason: "capture stopped by an error: reading packets", wake: 2*hour + 5*sec},
			{at: 2*hour + 4*sec, ev: evWake, want: nil, wake: 2*hour + 5*sec},
			{at: 2*hour + 5*sec, ev: evWake, want: started, on: true},
		}},
		{"the engine ends without saying why: treated as an error", []tstep{
			begin,
			{at: 2 * hour, ev: evEngineDone, before: failWith(nil),
				want: []string{"capture.stop 2026-a error", "checkpoint", "capture.error 2026-a …"}, reason: "without saying why"},
		}},
		{"a start that fails: a new config is tried at once", []tstep{
			{at: hour, ev: evBegin, cfg: withA, before: func(r *rig) { r.eng.startErr = errors.New("no such device") },
				want: cat(accepted, []string{"engine.start failed", "capture.error 2026-a …"}), reason: "could not start: no such device", wake: hour + 5*sec},
			{at: hour + sec, ev: evConfig, cfg: cf(setting(`"eth-test"`, `"eth-other"`), a), before: func(r *rig) { r.eng.startErr = nil },
				want: []string{"engine.start 2026-a metadata eth-other", "capture.start 2026-a", "checkpoint"}, on: true},
		}},
		{"no interface named and no default route", []tstep{
			{at: hour, ev: evBegin, cfg: cf(setting(`"eth-test"`, `""`), a), before: func(r *rig) { r.iface = "" },
				want: cat(accepted, []string{"capture.error 2026-a …"}), reason: "no interface"},
			{at: hour + 5*sec, ev: evWake, before: func(r *rig) { r.iface = "eth-default" },
				want: []string{"engine.start 2026-a metadata eth-default", "capture.start 2026-a", "checkpoint"}, on: true},
		}},
		{"the quota is reached: off until it is raised", []tstep{
			begin,
			{at: 2 * hour, ev: evEngineDone, before: failWith(fmt.Errorf("case 2026-a: 100 of 100 bytes used: %w", seal.ErrQuota)),
				want: []string{"capture.stop 2026-a quota", "checkpoint"}, reason: "capture.max_bytes reached"},
			{at: 3 * hour, ev: evWake, want: nil, reason: "capture.max_bytes reached"},
			{at: 3 * hour, ev: evConfig, cfg: cf(func(s string) string { return s + "[library]\nname = \"Other\"\n" }, a),
				want: nil, reason: "capture.max_bytes reached"},
			{at: 3 * hour, ev: evConfig, cfg: cf(setting("[capture]\n", "[capture]\nmax_bytes = \"2GiB\"\n"), a),
				want: nil, reason: "capture.max_bytes reached"}, // lowered: still full
			{at: 4 * hour, ev: evConfig, cfg: cf(setting("[capture]\n", "[capture]\nmax_bytes = \"8GiB\"\n"), a),
				want: started, on: true},
		}},
		{"disk space runs low: paused, then retried", []tstep{
			begin,
			{at: 2 * hour, ev: evEngineDone, before: failWith(fmt.Errorf("1 bytes free: %w", seal.ErrDiskLow)),
				want: []string{"capture.stop 2026-a disk-low", "checkpoint"}, reason: "free disk space is below", wake: 2*hour + 5*sec},
			{at: 2*hour + 5*sec, ev: evWake, want: started, on: true},
		}},
		{"the clock is stepped back before the case's start", []tstep{
			begin,
			{at: -hour, ev: evWake, want: stopped("case-pending"), reason: "starts at", wake: 0},
			{at: 0, ev: evWake, want: started, on: true},
		}},
		{"the clock is stepped forward past the case's end", []tstep{
			begin,
			{at: 11 * day, ev: evWake, want: stopped("case-ended"), reason: "ended at"},
		}},
		{"the clock is stepped back during a backoff: the retry is not put off", []tstep{
			begin,
			{at: 2 * hour, ev: evEngineDone, before: failWith(errors.New("read error")),
				want: []string{"capture.stop 2026-a error", "checkpoint", "capture.error 2026-a …"}, wake: 2*hour + 5*sec},
			{at: 2*hour - 10*minu, ev: evWake, want: nil, wake: 2*hour - 10*minu + 5*sec},
			{at: 2*hour - 10*minu + 5*sec, ev: evWake, want: started, on: true},
		}},
		{"shutdown while capturing records the stop", []tstep{
			begin,
			{at: 2 * hour, ev: evShutdown, want: stopped("shutdown")},
		}},
		{"the engine fails as shutdown comes: recorded as the failure", []tstep{
			begin,
			{at: 2 * hour, ev: evShutdown, before: failWith(errors.New("read error")),
				want: []string{"capture.stop 2026-a error", "checkpoint", "capture.error 2026-a …"}},
		}},
		{"shutdown with nothing running records nothing", []tstep{
			{at: 0, ev: evBegin, cfg: none},
			{at: hour, ev: evShutdown, want: nil},
		}},
		{"an engine-done event with no run under way is ignored", []tstep{
			{at: 0, ev: evBegin, cfg: none},
			{at: hour, ev: evEngineDone, want: nil},
			begin2(withA, cat(accepted, started)),
			{at: 2 * hour, ev: evEngineDone, want: nil, on: true}, // the run has not ended
		}},
		{"two cases in force: the earlier one, in the least invasive mode", []tstep{
			{at: 2 * hour, ev: evBegin, cfg: cf(nil,
				tcase{id: "2026-p", mode: "packets", extra: "snaplen = 256\n"},
				tcase{id: "2026-m", start: t0.Add(hour)}),
				want: []string{"case.accepted 2026-p", "case.accepted 2026-m", "checkpoint",
					"engine.start 2026-p metadata eth-test", "capture.start 2026-p", "checkpoint"}, on: true, reason: "also in force: 2026-m"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			for i, s := range tc.steps {
				if s.before != nil {
					s.before(r)
				}
				wake := r.step(s.at, event{kind: s.ev, cfg: s.cfg})
				got := r.acts.take()
				if !slices.Equal(got, s.want) {
					t.Fatalf("step %d (event %d at t0%+v): actions\n\t%s\nwant\n\t%s", i, s.ev, s.at, strings.Join(got, "\n\t"), strings.Join(s.want, "\n\t"))
				}
				st := r.c.Status()
				if st.On != s.on {
					t.Fatalf("step %d: status On = %v (%s); want %v", i, st.On, st.Reason, s.on)
				}
				if s.reason != "" && !strings.Contains(st.Reason, s.reason) {
					t.Fatalf("step %d: status reason %q; want it to say %q", i, st.Reason, s.reason)
				}
				if s.wake != 0 && !wake.Equal(t0.Add(s.wake)) {
					t.Fatalf("step %d: wake at t0%+v; want t0%+v", i, wake.Sub(t0), s.wake)
				}
				if s.ev == evShutdown && !wake.IsZero() {
					t.Fatalf("step %d: shutdown asks to be woken at %v", i, wake)
				}
			}
		})
	}
}

// begin2 is a begin-like step at t0+1h that hands over cfg as a config.
func begin2(cfg *config.Config, want []string) tstep {
	return tstep{at: hour, ev: evConfig, cfg: cfg, want: want, on: true}
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestControllerBackoff: a start that keeps failing is retried after 5 s,
// then after twice the last wait, up to 10 minutes, with one audit entry
// per attempt; a success and then a failure after a long run starts the
// backoff anew.
func TestControllerBackoff(t *testing.T) {
	r := newRig(t)
	r.eng.startErr = errors.New("no such device")
	at := hour
	wake := r.step(at, event{kind: evBegin, cfg: conf(t, nil, tcase{id: "2026-a"}.String())})
	attempts := []time.Duration{at}
	for len(attempts) < 11 {
		at = wake.Sub(t0)
		wake = r.step(at, event{kind: evWake})
		if slices.Contains(r.acts.take(), "engine.start failed") {
			attempts = append(attempts, at)
		}
	}
	var waits []time.Duration
	for i := 1; i < len(attempts); i++ {
		waits = append(waits, attempts[i]-attempts[i-1])
	}
	want := []time.Duration{5 * sec, 10 * sec, 20 * sec, 40 * sec, 80 * sec, 160 * sec, 320 * sec, 600 * sec, 600 * sec, 600 * sec}
	if !slices.Equal(waits, want) {
		t.Errorf("waits between attempts = %v; want %v", waits, want)
	}
	if n := r.aud.count(audit.CaptureError); n != 11 {
		t.Errorf("capture.error entries = %d; want 11, one per attempt", n)
	}
	r.acts.take()

	r.eng.startErr = nil
	at = r.c.retryAt.Sub(t0)
	r.step(at, event{kind: evWake})
	if !r.eng.isRunning() {
		t.Fatalf("capture not restarted after the backoff: %v", r.acts.take())
	}
	// A run that fails at once continues the backoff...
	r.eng.fail(errors.New("read error"))
	r.step(at+sec, event{kind: evEngineDone})
	if got := r.c.retryAt.Sub(t0.Add(at + sec)); got != 600*sec {
		t.Errorf("after a run that failed at once the next attempt is in %v; want the 10m the backoff had reached", got)
	}
	at += sec + 600*sec
	r.step(at, event{kind: evWake})
	if !r.eng.isRunning() {
		t.Fatalf("capture not restarted: %v", r.acts.take())
	}
	// ...one that ran long starts it anew.
	r.eng.fail(errors.New("read error"))
	wake = r.step(at+hour, event{kind: evEngineDone})
	if got := wake.Sub(t0.Add(at + hour)); got != 5*sec {
		t.Errorf("after a run of an hour the wait is %v; want 5s", got)
	}
}

// TestControllerApplyStorm: many configs in a row that all want the same
// capture start it once and audit the case once; configs that alternate
// between a valid and a refused case switch and audit once per change.
func TestControllerApplyStorm(t *testing.T) {
	r := newRig(t)
	r.step(hour, event{kind: evBegin, cfg: conf(t, nil)})
	base := conf(t, nil, tcase{id: "2026-a"}.String())
	for i := range 500 {
		cfg := *base // a file that differs in what capture does not use
		cfg.Library.Name = fmt.Sprintf("Library %d", i)
		cfg.SHA256[0], cfg.SHA256[1] = byte(i), byte(i>>8)
		r.step(hour+time.Duration(i)*time.Millisecond, event{kind: evConfig, cfg: &cfg})
	}
	if got, want := r.acts.take(), []string{"case.accepted 2026-a", "checkpoint", "engine.start 2026-a metadata eth-test", "capture.start 2026-a", "checkpoint"}; !slices.Equal(got, want) {
		t.Errorf("500 configs wanting one capture: actions %q; want %q", got, want)
	}
	good, refused := conf(t, nil, tcase{id: "2026-a"}.String()), conf(t, nil, tcase{id: "2026-a", approvedBy: "-"}.String())
	for i := range 100 {
		cfg := good
		if i%2 == 0 {
			cfg = refused
		}
		r.step(2*hour+time.Duration(i)*sec, event{kind: evConfig, cfg: cfg})
	}
	for kind, want := range map[audit.Kind]int{audit.CaseRejected: 50, audit.CaseAccepted: 51, audit.CaptureStart: 51, audit.CaptureStop: 50} {
		if n := r.aud.count(kind); n != want {
			t.Errorf("%s entries after 100 alternating configs = %d; want %d", kind, n, want)
		}
	}
}

// TestVerdictAuditedOncePerChange (issue 10 item 15): two tables with the
// same id, and an explicit id "#2" beside the second table, which has none
// (so is named "#2" too), are judged at every decision but audited once;
// a change to the file audits what changed, and only that.
func TestVerdictAuditedOncePerChange(t *testing.T) {
	r := newRig(t)
	dup := tcase{id: "dup"}
	unnamed := tcase{}
	hash2 := tcase{id: "#2"}
	dupAgain := tcase{id: "dup", start: t0.Add(hour)}
	cfg := conf(t, nil, dup.String(), unnamed.String(), hash2.String(), dupAgain.String())
	r.step(hour, event{kind: evBegin, cfg: cfg})
	for i := range 200 {
		r.step(hour+time.Duration(i+1)*recheckEvery, event{kind: evWake})
	}
	want := map[audit.Kind]int{audit.CaseAccepted: 1, audit.CaseRejected: 3}
	check := func(stage string) {
		t.Helper()
		for kind, n := range want {
			if got := r.aud.count(kind); got != n {
				t.Errorf("%s: %d %s entries; want %d", stage, got, kind, n)
			}
		}
	}
	check("200 decisions over the same file")

	dupAgain.approvedBy = "-" // the second "dup" breaks one more rule
	cfg = conf(t, nil, dup.String(), unnamed.String(), hash2.String(), dupAgain.String())
	r.step(3*hour, event{kind: evConfig, cfg: cfg})
	for i := range 50 {
		r.step(3*hour+time.Duration(i+1)*recheckEvery, event{kind: evWake})
	}
	want[audit.CaseRejected]++
	check("after one table changed")

	cfg = conf(t, nil, dup.String())
	r.step(4*hour, event{kind: evConfig, cfg: cfg})
	check("after the refused tables were deleted")
	cfg = conf(t, nil, dup.String(), unnamed.String())
	r.step(5*hour, event{kind: evConfig, cfg: cfg})
	want[audit.CaseRejected]++
	check("after a deleted table was put back")
}

// TestStatusShowsLivePackets: while capture runs, status shows the
// engine's packet count as it is now, not as it was at the last decision.
func TestStatusShowsLivePackets(t *testing.T) {
	r := newRig(t)
	r.step(hour, event{kind: evBegin, cfg: conf(t, nil, tcase{id: "2026-a"}.String())})
	for _, n := range []uint64{1, 7, 1000} {
		r.eng.packets.Store(n)
		if st := r.c.Status(); !st.On || st.Packets != n {
			t.Fatalf("engine has %d packets; status says on %v, %d packets", n, st.On, st.Packets)
		}
	}
	r.step(2*hour, event{kind: evConfig, cfg: conf(t, nil)})
	r.eng.packets.Store(5000) // a later run's counter must not show as this one's
	if st := r.c.Status(); st.On || st.Packets != 1000 {
		t.Errorf("after the stop status says on %v, %d packets; want off and the last run's 1000", st.On, st.Packets)
	}
}

// TestControllerRetentionFreesQuota: with the store full, capture stays
// off; once retention deletes the traffic of a case that ended, there is
// room again and capture resumes under the case in force.
func TestControllerRetentionFreesQuota(t *testing.T) {
	r := newRigStore(t, true)
	// The old case's traffic is due for deletion at t0+90m (its end plus a
	// day's retention): after the quota stops capture at t0+1h.
	old := tcase{id: "2026-old", start: t0.Add(-5 * day), end: t0.Add(-day + 90*minu)}
	cur := tcase{id: "2026-cur", start: t0, end: t0.Add(10 * day)}
	cfg := conf(t, func(s string) string { return s + "traffic_retention = \"1d\"\n" }, old.String(), cur.String())
	// Seal a segment of the old case, as a run four days ago did.
	r.clock.set(t0.Add(-4 * day))
	store, err := seal.Open(context.Background(), r.dir, seal.Options{Recorder: r.aud, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.NewWriter(seal.WriterOptions{Case: "2026-old", Format: seal.JSONL, Recipients: []string{recipient}, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte(`{"kind":"dns","name":"old.example"}`+"\n"), t0.Add(-4*day)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	r.step(hour, event{kind: evBegin, cfg: cfg})
	if !r.eng.isRunning() {
		t.Fatalf("capture did not start: %v", r.acts.take())
	}
	r.eng.fail(fmt.Errorf("full: %w", seal.ErrQuota))
	wake := r.step(hour+sec, event{kind: evEngineDone})
	if st := r.c.Status(); st.On || !strings.Contains(st.Reason, "max_bytes") {
		t.Fatalf("after the quota: on %v, %q", st.On, st.Reason)
	}
	r.acts.take()
	for !r.eng.isRunning() && wake.Before(t0.Add(3*hour)) {
		wake = r.step(wake.Sub(t0), event{kind: evWake})
		if r.eng.isRunning() && r.aud.count(audit.TrafficRetention) == 0 {
			t.Fatalf("capture restarted at t0%+v before retention freed room", r.clock.Now().Sub(t0))
		}
	}
	if !r.eng.isRunning() {
		t.Fatalf("capture did not resume after retention freed room: %v; status %q", r.acts.take(), r.c.Status().Reason)
	}
	if at := r.clock.Now().Sub(t0); at != 2*hour {
		t.Errorf("capture resumed at t0%+v; want at the hourly purge, t0+2h", at)
	}
}

// TestStatusUntilFollowsEnd: when the running case's end moves (ended_at
// added, end changed) capture goes on, and status says the new end.
func TestStatusUntilFollowsEnd(t *testing.T) {
	r := newRig(t)
	r.step(hour, event{kind: evBegin, cfg: conf(t, nil, tcase{id: "2026-a"}.String())})
	for _, c := range []tcase{
		{id: "2026-a", endedAt: t0.Add(3 * hour)},
		{id: "2026-a", end: t0.Add(2 * day)},
	} {
		r.step(2*hour, event{kind: evConfig, cfg: conf(t, nil, c.String())})
		want := c.end
		if !c.endedAt.IsZero() {
			want = c.endedAt
		}
		if st := r.c.Status(); !st.On || !st.Until.Equal(want) {
			t.Errorf("after the end moved to %v: status on %v until %v", want, st.On, st.Until)
		}
	}
	if n := r.eng.starts; n != 1 {
		t.Errorf("the engine was started %d times; want once, the run goes on", n)
	}
}
