package misuse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// AuditLog is what the controller needs of the audit log.
type AuditLog interface {
	audit.Recorder
	Checkpoint(ctx context.Context) (audit.Checkpoint, error)
}

// Engine is what the controller needs of the capture engine;
// *capture.Engine is the real one. A run ends at Stop or by itself (the
// quota, a read or write error): then Done is closed and Err says why.
// Stats may be called from any goroutine: status reads the live counts.
type Engine interface {
	Start(ctx context.Context, s capture.Settings) error
	Stop() capture.Stats
	Done() <-chan struct{}
	Err() error
	Stats() capture.Stats
}

// Timer is the one timer Run waits on (a time.Timer unless a test gives
// its own). Reset re-arms it; a value from an earlier arming is never
// delivered after Reset.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// Options configure a Controller.
type Options struct {
	DataDir string
	Audit   AuditLog
	Log     *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Engine captures; a new capture.Engine when nil.
	Engine Engine
	// NewTimer makes Run's timer; a time.Timer when nil.
	NewTimer func() Timer
	// DefaultInterface names the interface to capture on when the config
	// names none; the interface of the default route when nil.
	DefaultInterface func() string
	// OpenStore opens the traffic store; the seal store under DataDir
	// when nil.
	OpenStore OpenStore
}

// Intervals; variables so tests can shorten them.
var (
	// recheckEvery bounds how long the controller sleeps between
	// decisions even when nothing is scheduled, so that a wall clock
	// stepped forwards is noticed.
	recheckEvery = 30 * time.Second
	// retryFirst and retryMax bound the backoff after capture failed to
	// start or stopped with an error other than the quota.
	retryFirst = 5 * time.Second
	retryMax   = 10 * time.Minute
	purgeEvery = time.Hour
)

// Controller switches capture on and off as Decide says. It is the only
// code in carrel that starts the capture engine.
//
// It is a state machine: step takes one event (the config in force at
// start, a config applied, the wake time reached, the engine ended by
// itself, shutdown), brings capture in line with Decide for the clock's
// now, and returns when it wants to be woken next. Run only turns channels
// and the timer into events; tests call step directly with a fake engine
// and clock.
type Controller struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	engine  Engine
	applyCh chan *config.Config

	// Owned by the goroutine that calls step.
	cfg       *config.Config
	store     Store // nil until something has been captured on this PC
	running   *session
	quota     *quotaBlock // capture may not restart until there is room again
	retryAt   time.Time   // earliest restart after a failure
	retryWait time.Duration
	nextPurge time.Time
	seen      map[verdictKey]string // fingerprint of each case's last audited verdict
	last      capture.Stats         // counts of the last capture that ended
	failure   string                // why the last start failed or the last capture ended by itself

	mu     sync.Mutex
	status Status
}

// session is one run of the capture engine.
type session struct {
	k       sessionKey
	until   time.Time
	started time.Time
	done    <-chan struct{}
	cancel  context.CancelFunc // ends the context the engine runs under
}

// quotaBlock records the state in which the quota stopped capture. Capture
// restarts only when the quota was raised or retention freed room:
// restarting sooner would only hit the quota again.
type quotaBlock struct {
	maxBytes int64
	used     int64
}

const quotaReason = "capture.max_bytes reached: sealed traffic fills the quota; raise it or let retention delete old segments"

// New returns a controller. Nothing is opened until Run.
func New(opts Options) *Controller {
	c := &Controller{opts: opts, log: opts.Log, now: opts.Now, engine: opts.Engine,
		applyCh: make(chan *config.Config, 1), seen: map[verdictKey]string{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.engine == nil {
		c.engine = new(capture.Engine)
	}
	if c.opts.NewTimer == nil {
		c.opts.NewTimer = newRealTimer
	}
	if c.opts.DefaultInterface == nil {
		c.opts.DefaultInterface = defaultInterface
	}
	if c.opts.OpenStore == nil {
		c.opts.OpenStore = openSealStore(opts.DataDir, opts.Audit, c.now)
	}
	return c
}

// Apply hands the controller a config that was accepted. It returns at
// once; the decision is taken by Run. Of configs handed over faster than
// Run takes them, only the newest counts.
func (c *Controller) Apply(cfg *config.Config) {
	for {
		select {
		case c.applyCh <- cfg:
			return
		default:
			select { // replace a config not yet taken: only the newest matters
			case <-c.applyCh:
			default:
			}
		}
	}
}

// eventKind is what woke the controller.
type eventKind int

const (
	evBegin      eventKind = iota // Run started; cfg is the config in force
	evConfig                      // Apply handed over cfg
	evWake                        // the time step asked to be woken at came
	evEngineDone                  // the engine's run ended by itself
	evShutdown                    // Run's context ended
)

type event struct {
	kind eventKind
	cfg  *config.Config
}

// Run decides and acts until ctx is cancelled, then stops capture. cfg is
// the config in force at start.
func (c *Controller) Run(ctx context.Context, cfg *config.Config) {
	timer := c.opts.NewTimer()
	defer timer.Stop()
	wake := c.step(ctx, event{kind: evBegin, cfg: cfg})
	for {
		timer.Reset(max(wake.Sub(c.now()), 0))
		ev := c.wait(ctx, timer)
		wake = c.step(ctx, ev)
		if ev.kind == evShutdown {
			return
		}
	}
}

// wait turns what happens next into an event. Shutdown wins over anything
// that arrived with it.
func (c *Controller) wait(ctx context.Context, timer Timer) event {
	var done <-chan struct{}
	if c.running != nil {
		done = c.running.done
	}
	ev := event{kind: evWake}
	select {
	case <-ctx.Done():
	case cfg := <-c.applyCh:
		ev = event{kind: evConfig, cfg: cfg}
	case <-done:
		ev.kind = evEngineDone
	case <-timer.C():
	}
	if ctx.Err() != nil {
		return event{kind: evShutdown}
	}
	return ev
}

// step handles one event and returns when the controller wants to be
// woken next (zero after shutdown). Everything it records is recorded with
// a context that ctx's end does not cancel: a capture.start that reached
// the log must always be followed by its capture.stop, shutdown or not.
func (c *Controller) step(ctx context.Context, ev event) time.Time {
	ctx = context.WithoutCancel(ctx)
	switch ev.kind {
	case evBegin:
		c.cfg = ev.cfg
		if err := c.openExistingStore(ctx); err != nil {
			c.log.Error("opening the traffic store", "err", err)
		}
		// nextPurge is zero: retention runs below, before any capture.
	case evConfig:
		if ev.cfg.SHA256 != c.cfg.SHA256 || ev.cfg.SHA256 == [32]byte{} {
			// A new config may fix what made capture fail (the interface,
			// the keys): try again at once.
			c.retryAt, c.retryWait = time.Time{}, 0
		}
		c.cfg = ev.cfg
	case evEngineDone:
		c.engineStopped(ctx)
	case evShutdown:
		c.engineStopped(ctx) // a run that ended by itself as shutdown came is recorded as such
		c.stop(ctx, "shutdown")
		c.publish(Decide(c.cfg, c.cfg.PC.ID, c.now()))
		if c.store != nil {
			if err := c.store.Close(); err != nil {
				c.log.Error("closing the traffic store", "err", err)
			}
			c.store = nil
		}
		return time.Time{}
	}
	now := c.now()
	switch {
	case !now.Before(c.nextPurge):
		c.purge(ctx)
		c.nextPurge = now.Add(purgeEvery)
	case c.nextPurge.Sub(now) > purgeEvery:
		c.nextPurge = now.Add(purgeEvery) // the clock was stepped back
	}
	d := c.reconcile(ctx, now)
	return c.wakeAt(now, d)
}

// reconcile makes the world match the decision for now.
func (c *Controller) reconcile(ctx context.Context, now time.Time) Decision {
	cfg := c.cfg
	d := Decide(cfg, cfg.PC.ID, now)
	c.auditVerdicts(ctx, d)
	want := c.wanted(cfg, d)
	if c.running != nil && (want == nil || *want != c.running.k) {
		c.stop(ctx, stopReason(c.running.k.caseID, d))
	}
	if c.running != nil {
		c.running.until = d.Until // the case's end may have moved
	}
	if c.retryAt.Sub(now) > c.retryWait {
		c.retryAt = now.Add(c.retryWait) // the clock was stepped back
	}
	c.checkQuota(ctx, cfg)
	if want != nil && c.running == nil && c.quota == nil && !now.Before(c.retryAt) {
		c.start(ctx, cfg, d, *want)
	}
	c.publish(d)
	return d
}

// sessionKey is what must stay the same for a running capture to go on.
type sessionKey struct {
	caseID, mode, iface string
	snaplen             int
	recipients          string
	maxBytes            int64
	ring                int64
}

func (c *Controller) wanted(cfg *config.Config, d Decision) *sessionKey {
	if !d.Capture {
		return nil
	}
	iface := cfg.Capture.Interface
	if iface == "" {
		iface = c.opts.DefaultInterface()
	}
	return &sessionKey{caseID: d.Case.ID, mode: d.Mode, iface: iface, snaplen: d.Snaplen,
		recipients: fmt.Sprint(cfg.Capture.Recipients), maxBytes: int64(cfg.Capture.MaxBytes), ring: int64(cfg.Capture.RingSize)}
}

// start opens the traffic store if needed and starts the engine for the
// decided case. It is the only place that starts the capture engine. The
// engine runs under a context of the controller's own, which only stop
// ends: the service's shutdown must not stop capture behind the
// controller's back, or the stop would go unrecorded.
func (c *Controller) start(ctx context.Context, cfg *config.Config, d Decision, k sessionKey) {
	fail := func(err error) {
		c.log.Error("capture could not start", "case", k.caseID, "err", err)
		c.record(ctx, audit.Event{Kind: audit.CaptureError, Actor: "service",
			Fields: []audit.Field{audit.Token("case", auditCase(k.caseID)), audit.Text("why", err.Error())}})
		c.backoff()
		c.failure = fmt.Sprintf("capture could not start: %v", err)
	}
	if k.iface == "" {
		fail(errors.New("no interface: set capture.interface (no default route was found)"))
		return
	}
	if err := c.openStore(ctx); err != nil {
		fail(err)
		return
	}
	mode, _ := capture.ParseMode(k.mode)
	set := capture.Settings{Interface: k.iface, Mode: mode, Snaplen: k.snaplen, RingSize: int(k.ring), CaseID: k.caseID}
	header, err := capture.SegmentHeader(set)
	if err != nil {
		fail(err)
		return
	}
	format := seal.JSONL
	if mode == capture.ModePackets {
		format = seal.PCAPNG
	}
	w, err := c.store.NewSink(seal.WriterOptions{Case: k.caseID, Format: format, Header: header,
		Recipients: cfg.Capture.Recipients, MaxBytes: k.maxBytes, Now: c.now})
	if err != nil {
		fail(err)
		return
	}
	set.Sink = w
	engineCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := c.engine.Start(engineCtx, set); err != nil {
		cancel()
		w.Close()
		fail(err)
		return
	}
	c.running = &session{k: k, until: d.Until, started: c.now(), done: c.engine.Done(), cancel: cancel}
	c.failure = ""
	c.log.Info("traffic capture started", "case", k.caseID, "mode", k.mode, "interface", k.iface, "until", d.Until)
	c.record(ctx, audit.Event{Kind: audit.CaptureStart, Actor: "service", Fields: []audit.Field{
		audit.Token("case", auditCase(k.caseID)), audit.Token("mode", k.mode), audit.Token("interface", k.iface)}})
	c.checkpoint(ctx)
}

// stop stops the engine (which flushes and seals what it holds) and
// records why.
func (c *Controller) stop(ctx context.Context, why string) {
	r := c.running
	if r == nil {
		return
	}
	st := c.engine.Stop()
	r.cancel()
	c.running = nil
	c.last = st
	c.log.Info("traffic capture stopped", "case", r.k.caseID, "why", why, "packets", st.Packets, "drops", st.KernelDrops)
	c.record(ctx, audit.Event{Kind: audit.CaptureStop, Actor: "service", Fields: []audit.Field{
		audit.Token("case", auditCase(r.k.caseID)), audit.Token("why", why),
		audit.Int("packets", int64(st.Packets)), audit.Int("drops", int64(st.KernelDrops))}})
	c.checkpoint(ctx)
}

// engineStopped handles a capture that ended by itself: the quota was
// reached, disk space ran low, the interface vanished, a write failed.
func (c *Controller) engineStopped(ctx context.Context) {
	r := c.running
	if r == nil {
		return
	}
	select {
	case <-r.done:
	default:
		return // not ended: nothing to do
	}
	err := c.engine.Err()
	why := "error"
	switch {
	case errors.Is(err, seal.ErrQuota):
		why = "quota"
	case errors.Is(err, seal.ErrDiskLow):
		why = "disk-low"
	case err == nil:
		err = errors.New("the capture engine ended without saying why")
	}
	ran := c.now().Sub(r.started)
	c.stop(ctx, why)
	c.log.Error("traffic capture ended by itself", "why", why, "err", err)
	if ran >= retryMax {
		c.retryWait = 0 // it ran for long: this failure starts a new backoff
	}
	switch why {
	case "quota":
		c.quota = &quotaBlock{maxBytes: int64(c.cfg.Capture.MaxBytes), used: c.storedBytes(ctx)}
	case "disk-low":
		// Space may come back (another program's files deleted): retry with
		// backoff, and say why meanwhile.
		c.backoff()
		c.failure = "capture paused: free disk space is below the safety margin"
	default:
		c.record(ctx, audit.Event{Kind: audit.CaptureError, Actor: "service", Fields: []audit.Field{
			audit.Token("case", auditCase(r.k.caseID)), audit.Text("why", truncate(err.Error(), 2000))}})
		c.backoff()
		c.failure = fmt.Sprintf("capture stopped by an error: %v", err)
	}
}

// checkQuota lifts the quota block once the quota was raised or retention
// freed room.
func (c *Controller) checkQuota(ctx context.Context, cfg *config.Config) {
	q := c.quota
	if q == nil {
		return
	}
	raised := int64(cfg.Capture.MaxBytes) > q.maxBytes
	freed := c.storedBytes(ctx) < q.used
	if raised || freed {
		c.log.Info("room under capture.max_bytes again", "raised", raised, "freed", freed)
		c.quota = nil
	}
}

// storedBytes is what the sealed segments take; on error the most it
// could be, so that an unreadable store never lifts the quota block.
func (c *Controller) storedBytes(ctx context.Context) int64 {
	if c.store == nil {
		return 0
	}
	u, err := c.store.Usage(ctx)
	if err != nil {
		c.log.Error("reading traffic usage", "err", err)
		return 1<<63 - 1
	}
	return u.Bytes
}

func (c *Controller) backoff() {
	if c.retryWait == 0 {
		c.retryWait = retryFirst
	} else {
		c.retryWait = min(2*c.retryWait, retryMax)
	}
	c.retryAt = c.now().Add(c.retryWait)
}

// wakeAt is when to decide again: the next moment the decision changes by
// the clock, a retry, a purge, and at the latest recheckEvery from now.
func (c *Controller) wakeAt(now time.Time, d Decision) time.Time {
	wake := now.Add(recheckEvery)
	for _, t := range []time.Time{d.Next, c.retryAt, c.nextPurge} {
		if t.After(now) && t.Before(wake) {
			wake = t
		}
	}
	return wake
}

func (c *Controller) record(ctx context.Context, e audit.Event) {
	if _, err := c.opts.Audit.Record(ctx, e); err != nil {
		c.log.Error("writing audit entry", "kind", e.Kind, "err", err)
	}
}

func (c *Controller) checkpoint(ctx context.Context) {
	if _, err := c.opts.Audit.Checkpoint(ctx); err != nil {
		c.log.Error("signing audit checkpoint", "err", err)
	}
}

// auditCase is the case id as an audit token: an id that is not a valid
// token (it has spaces, say) is recorded by its position instead.
func auditCase(id string) string {
	if config.ValidCaseID(id) || (len(id) > 1 && id[0] == '#') {
		return id
	}
	return "(invalid-id)"
}

// stopReason says why the running case no longer captures, as an audit token.
func stopReason(caseID string, d Decision) string {
	for _, cd := range d.Cases {
		if cd.ID != caseID {
			continue
		}
		switch cd.State {
		case StateRefused:
			return "case-refused"
		case StateEnded:
			return "case-ended"
		case StateOutOfScope:
			return "out-of-scope"
		case StatePending:
			return "case-pending"
		default:
			return "settings-changed" // still active: mode, interface, keys or quota changed
		}
	}
	return "case-removed"
}

// truncate cuts s to at most n bytes, never inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// realTimer is a time.Timer as a Timer.
type realTimer struct{ t *time.Timer }

func newRealTimer() Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }
