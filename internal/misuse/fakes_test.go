package misuse

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// actions is what the controller did, in order, as short lines: the
// engine's starts and stops, and the audit entries and checkpoints.
type actions struct {
	mu   sync.Mutex
	list []string
}

func (a *actions) add(s string) {
	a.mu.Lock()
	a.list = append(a.list, s)
	a.mu.Unlock()
}

// take returns the actions since the last take.
func (a *actions) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.list
	a.list = nil
	return l
}

// fakeAudit checks each event as the real log does and, like the real
// log's SQLite transaction, refuses to write under a context that has
// ended.
type fakeAudit struct {
	acts    *actions
	mu      sync.Mutex
	entries []audit.Event
}

func (f *fakeAudit) Record(ctx context.Context, e audit.Event) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("recording %s: %w", e.Kind, err)
	}
	if err := e.Check(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.entries = append(f.entries, e)
	n := int64(len(f.entries))
	f.mu.Unlock()
	line := string(e.Kind)
	for _, k := range []string{"case", "why"} {
		for _, fl := range e.Fields {
			if fl.Key == k {
				v := fl.Value
				if k == "why" && e.Kind != audit.CaptureStop {
					v = "…" // free text: the tests match on the kind and case
				}
				line += " " + v
			}
		}
	}
	f.acts.add(line)
	return n, nil
}

func (f *fakeAudit) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return audit.Checkpoint{}, err
	}
	f.acts.add("checkpoint")
	return audit.Checkpoint{}, nil
}

func (f *fakeAudit) count(kind audit.Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// fakeEngine behaves as capture.Engine does towards its caller: one run
// at a time; a run ends at Stop, at the end of the context it was started
// with, or by itself (fail); the sink is closed when the run ends; Done is
// closed after that and Err then says why.
type fakeEngine struct {
	acts *actions

	mu       sync.Mutex
	startErr error // the next Starts fail with it
	running  bool
	done     chan struct{}
	err      error
	sink     capture.Sink
	unhook   func() bool
	endedBy  string // "stop", "context" or "itself"
	starts   int
	started  chan struct{} // receives after each successful Start, when not nil

	packets atomic.Uint64
}

func (f *fakeEngine) Start(ctx context.Context, s capture.Settings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return capture.ErrRunning
	}
	if f.startErr != nil {
		f.acts.add("engine.start failed")
		return f.startErr
	}
	f.running, f.done, f.err, f.sink, f.endedBy = true, make(chan struct{}), nil, s.Sink, ""
	f.starts++
	f.packets.Store(0)
	f.unhook = context.AfterFunc(ctx, func() { f.end(nil, "context") })
	f.acts.add(fmt.Sprintf("engine.start %s %s %s", s.CaseID, s.Mode, s.Interface))
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default:
		}
	}
	return nil
}

// end ends the run; it reports whether one was running.
func (f *fakeEngine) end(err error, by string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return false
	}
	f.running, f.err, f.endedBy = false, err, by
	f.unhook()
	f.sink.Close()
	close(f.done)
	return true
}

func (f *fakeEngine) Stop() capture.Stats {
	if f.end(nil, "stop") {
		f.acts.add("engine.stop")
	}
	return f.Stats()
}

// fail ends the run by itself, as a read error or the sink's refusal does.
func (f *fakeEngine) fail(err error) { f.end(err, "itself") }

func (f *fakeEngine) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

func (f *fakeEngine) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return nil
	}
	return f.err
}

func (f *fakeEngine) Stats() capture.Stats { return capture.Stats{Packets: f.packets.Load()} }

func (f *fakeEngine) isRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// fakeTimer is Run's timer, fired by the test. Every Reset is reported on
// resets: Run re-arms the timer once after each step, so a Reset says a
// step is done.
type fakeTimer struct {
	c      chan time.Time
	resets chan time.Duration
}

func newFakeTimer() *fakeTimer {
	return &fakeTimer{c: make(chan time.Time), resets: make(chan time.Duration, 1000)}
}

func (f *fakeTimer) C() <-chan time.Time   { return f.c }
func (f *fakeTimer) Reset(d time.Duration) { f.resets <- d }
func (f *fakeTimer) Stop()                 {}

// clock is a settable clock safe for use from several goroutines.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fakeStore is a traffic store in memory. Like the real one it refuses to
// close while a sink is open.
type fakeStore struct {
	mu      sync.Mutex
	exists  bool // created, now or by an earlier run
	bytes   int64
	sinks   int
	onOpen  func(create bool) // the rig checks G1 here
	closed  bool
	purges  int
	deleted int64 // bytes the next purge frees
}

func (f *fakeStore) open(_ context.Context, create bool) (Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onOpen != nil {
		f.onOpen(create)
	}
	if !create && !f.exists {
		return nil, nil
	}
	f.exists, f.closed = true, false
	return f, nil
}

func (f *fakeStore) NewSink(o seal.WriterOptions) (capture.Sink, error) {
	if !config.ValidCaseID(o.Case) || len(o.Recipients) == 0 {
		return nil, fmt.Errorf("bad writer options %+v", o)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sinks++
	return &fakeSink{s: f}, nil
}

func (f *fakeStore) Usage(context.Context) (seal.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return seal.Usage{Bytes: f.bytes}, nil
}

func (f *fakeStore) Segments(context.Context, seal.Filter) ([]seal.Segment, error) { return nil, nil }

func (f *fakeStore) Purge(context.Context, time.Time, seal.CaseEnd, time.Duration) (seal.Purged, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges++
	p := seal.Purged{Bytes: f.deleted}
	f.bytes -= f.deleted
	f.deleted = 0
	return p, nil
}

func (f *fakeStore) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sinks > 0 {
		return fmt.Errorf("closing traffic store: %d sink(s) still open", f.sinks)
	}
	f.closed = true
	return nil
}

type fakeSink struct {
	s      *fakeStore
	closed bool
}

func (k *fakeSink) Write([]byte, time.Time) error { return nil }
func (k *fakeSink) Due(time.Time) bool            { return false }
func (k *fakeSink) Cut() error                    { return nil }
func (k *fakeSink) Close() error {
	if !k.closed {
		k.closed = true
		k.s.mu.Lock()
		k.s.sinks--
		k.s.mu.Unlock()
	}
	return nil
}

// rig is a controller wired to fakes: engine, traffic store, audit log,
// timer and clock.
type rig struct {
	t     *testing.T
	dir   string
	clock *clock
	acts  *actions
	eng   *fakeEngine
	aud   *fakeAudit
	store *fakeStore // nil with the real store
	timer *fakeTimer
	iface string // what the default route names
	c     *Controller
}

func newRig(t *testing.T) *rig { return newRigStore(t, false) }

// newRigStore makes a rig; with real it uses the real traffic store in a
// temporary folder instead of the fake.
func newRigStore(t *testing.T, real bool) *rig {
	t.Helper()
	r := &rig{t: t, clock: &clock{now: t0}, acts: &actions{}, timer: newFakeTimer(), iface: "eth-default"}
	if real {
		r.dir = t.TempDir()
	}
	r.eng = &fakeEngine{acts: r.acts}
	r.aud = &fakeAudit{acts: r.acts}
	opts := Options{DataDir: r.dir, Audit: r.aud, Log: slog.New(slog.DiscardHandler), Now: r.clock.Now,
		Engine: r.eng, NewTimer: func() Timer { return r.timer }, DefaultInterface: func() string { return r.iface }}
	if !real {
		r.store = &fakeStore{}
		r.store.onOpen = func(create bool) {
			// G1: nothing is created under traffic/ unless a case is in force.
			if create && !Decide(r.c.cfg, r.c.cfg.PC.ID, r.clock.Now()).Capture {
				t.Errorf("the traffic store is created at %s with no case in force", r.clock.Now().Format(time.RFC3339))
			}
		}
		opts.OpenStore = r.store.open
	}
	r.c = New(opts)
	t.Cleanup(func() {
		if r.c.store != nil {
			r.eng.Stop()
			if err := r.c.store.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return r
}

// baseConfig is a config without cases. Configs differ in their digest
// whenever their text does.
const baseConfig = `version = 1
[pc]
id = "pc-01"
[storage]
data_dir = "/var/lib/carrel"
[capture]
interface = "eth-test"
recipients = ["` + recipient + `"]
`

// conf parses baseConfig with edits applied and the case tables appended.
func conf(t testing.TB, edit func(string) string, cases ...string) *config.Config {
	t.Helper()
	text := baseConfig
	if edit != nil {
		text = edit(text)
	}
	text += strings.Join(cases, "")
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, text)
	}
	return cfg
}

// tcase is one [[case]] table; zero fields get valid values.
type tcase struct {
	id               string
	start, end       time.Time // default: t0 and t0+10 days
	endedAt          time.Time
	approvedBy       string // "-" leaves the key out
	pcs, mode, extra string
}

func (c tcase) String() string {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if c.start.IsZero() {
		c.start = t0
	}
	if c.end.IsZero() {
		c.end = t0.Add(10 * 24 * time.Hour)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n[[case]]\n")
	if c.id != "" {
		fmt.Fprintf(&b, "id = %q\n", c.id)
	}
	fmt.Fprintf(&b, "reason = \"identified misuse\"\ncategory = \"abuse-of-service\"\ndeclared_by = \"Anne Berg\"\n")
	switch c.approvedBy {
	case "-":
	case "":
		b.WriteString("approved_by = \"Bo Dahl\"\n")
	default:
		fmt.Fprintf(&b, "approved_by = %q\n", c.approvedBy)
	}
	fmt.Fprintf(&b, "notice_posted_at = %s\nstart = %s\nend = %s\n", ts(c.start.Add(-time.Hour)), ts(c.start), ts(c.end))
	if !c.endedAt.IsZero() {
		fmt.Fprintf(&b, "ended_at = %s\nended_by = \"Anne Berg\"\n", ts(c.endedAt))
	}
	if c.pcs == "" {
		c.pcs = `"pc-01"`
	}
	fmt.Fprintf(&b, "pcs = [%s]\n", c.pcs)
	if c.mode != "" {
		fmt.Fprintf(&b, "mode = %q\n", c.mode)
	}
	b.WriteString(c.extra)
	return b.String()
}
