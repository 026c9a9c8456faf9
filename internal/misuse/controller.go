package misuse

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
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

// Options configure a Controller.
type Options struct {
	DataDir string
	Audit   AuditLog
	Log     *slog.Logger
	Now     func() time.Time
}

// Intervals; variables so tests can shorten them.
var (
	// recheckEvery bounds how long the controller sleeps between
	// decisions even when nothing is scheduled, so that a stepped wall
	// clock is noticed.
	recheckEvery = 30 * time.Second
	// retryFirst and retryMax bound the backoff after capture failed to
	// start or stopped with an error other than the quota.
	retryFirst = 5 * time.Second
	retryMax   = 10 * time.Minute
	purgeEvery = time.Hour
)

// Controller switches capture on and off as Decide says. It is the only
// code in carrel that starts the capture engine.
type Controller struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	applyCh chan *config.Config

	// Owned by the Run goroutine.
	engine    capture.Engine
	store     *seal.Store // nil until something has been captured on this PC
	running   *session
	blocked   string    // why capture may not restart until the config changes (quota)
	retryAt   time.Time // earliest restart after a failure
	retryWait time.Duration
	seen      map[string]string // case id -> fingerprint of its last audited verdict
	last      capture.Stats     // counts of the last capture that ended
	failure   string            // why the last start failed or the last capture ended by itself

	mu     sync.Mutex
	cfg    *config.Config
	status Status
}

// session is one run of the capture engine.
type session struct {
	caseID, mode, iface string
	snaplen             int
	writer              *seal.Writer
	until               time.Time
	k                   sessionKey
}

// New returns a controller. Nothing is opened until Run.
func New(opts Options) *Controller {
	c := &Controller{opts: opts, log: opts.Log, now: opts.Now, applyCh: make(chan *config.Config, 1), seen: map[string]string{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Apply hands the controller a config that was accepted. It returns at
// once; the decision is taken by Run.
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

// Run decides and acts until ctx is cancelled, then stops capture. It
// re-decides when Apply hands it a config, at the moment Decide said the
// answer changes next, when the engine stops by itself, and every
// recheckEvery. cfg is the config in force at start.
func (c *Controller) Run(ctx context.Context, cfg *config.Config) {
	c.setConfig(cfg)
	if err := c.openExistingStore(ctx); err != nil {
		c.log.Error("opening the traffic store", "err", err)
	}
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	c.purge(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d := c.reconcile(ctx)
		timer.Reset(c.sleep(d))
		var done <-chan struct{}
		if c.running != nil {
			done = c.engine.Done()
		}
		select {
		case <-ctx.Done():
			c.stop(context.WithoutCancel(ctx), "shutdown")
			c.publish(Decide(c.config(), c.config().PC.ID, c.now()))
			if c.store != nil {
				c.store.Close()
			}
			return
		case cfg := <-c.applyCh:
			c.setConfig(cfg)
			c.blocked = "" // a new config may raise the quota or change the case
		case <-done:
			c.engineStopped(ctx)
		case <-purge.C:
			c.purge(ctx)
		case <-timer.C:
		}
	}
}

// reconcile makes the world match the decision for now.
func (c *Controller) reconcile(ctx context.Context) Decision {
	cfg := c.config()
	now := c.now()
	d := Decide(cfg, cfg.PC.ID, now)
	c.auditVerdicts(ctx, d)
	want := c.wanted(cfg, d)
	if c.running != nil && (want == nil || *want != c.running.k) {
		c.stop(ctx, stopReason(c.running.caseID, d))
	}
	if want != nil && c.running == nil && c.blocked == "" && !now.Before(c.retryAt) {
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
		iface = defaultInterface()
	}
	return &sessionKey{caseID: d.Case.ID, mode: d.Mode, iface: iface, snaplen: d.Snaplen,
		recipients: fmt.Sprint(cfg.Capture.Recipients), maxBytes: int64(cfg.Capture.MaxBytes), ring: int64(cfg.Capture.RingSize)}
}

// start opens the traffic store if needed and starts the engine for the
// decided case. It is the only place that calls capture.Engine.Start.
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
	w, err := c.store.NewWriter(seal.WriterOptions{Case: k.caseID, Format: format, Header: header,
		Recipients: cfg.Capture.Recipients, MaxBytes: k.maxBytes, Now: c.now})
	if err != nil {
		fail(err)
		return
	}
	set.Sink = w
	if err := c.engine.Start(ctx, set); err != nil {
		w.Close()
		fail(err)
		return
	}
	c.running = &session{caseID: k.caseID, mode: k.mode, iface: k.iface, snaplen: k.snaplen, writer: w, until: d.Until, k: k}
	c.retryWait = 0
	c.log.Info("traffic capture started", "case", k.caseID, "mode", k.mode, "interface", k.iface, "until", d.Until)
	c.record(ctx, audit.Event{Kind: audit.CaptureStart, Actor: "service", Fields: []audit.Field{
		audit.Token("case", auditCase(k.caseID)), audit.Token("mode", k.mode), audit.Token("interface", k.iface)}})
	c.checkpoint(ctx)
}

// stop stops the engine (which flushes and seals what it holds).
func (c *Controller) stop(ctx context.Context, why string) {
	if c.running == nil {
		return
	}
	st := c.engine.Stop()
	r := c.running
	c.running = nil
	c.log.Info("traffic capture stopped", "case", r.caseID, "why", why, "packets", st.Packets, "drops", st.KernelDrops)
	c.record(ctx, audit.Event{Kind: audit.CaptureStop, Actor: "service", Fields: []audit.Field{
		audit.Token("case", auditCase(r.caseID)), audit.Token("why", why),
		audit.Int("packets", int64(st.Packets)), audit.Int("drops", int64(st.KernelDrops))}})
	c.checkpoint(ctx)
	c.last = st
}

// engineStopped handles a capture that ended by itself: the quota was
// reached, the interface vanished, a write failed.
func (c *Controller) engineStopped(ctx context.Context) {
	err := c.engine.Err()
	why := "error"
	switch {
	case errors.Is(err, seal.ErrQuota):
		why = "quota"
	case errors.Is(err, seal.ErrDiskLow):
		why = "disk-low"
	}
	c.stop(ctx, why)
	switch why {
	case "quota":
		// Restarting would only hit the quota again: wait for a new config.
		c.blocked = "capture.max_bytes reached: sealed traffic fills the quota; raise it or let retention delete old segments"
	case "disk-low":
		// Space may come back (another program's files deleted): retry with
		// backoff, and say why meanwhile.
		c.backoff()
		c.failure = "capture paused: free disk space is below the safety margin"
	default:
		c.record(ctx, audit.Event{Kind: audit.CaptureError, Actor: "service", Fields: []audit.Field{audit.Text("why", fmt.Sprint(err))}})
		c.backoff()
		c.failure = fmt.Sprintf("capture stopped by an error: %v", err)
	}
	c.log.Error("traffic capture ended by itself", "why", why, "err", err)
}

func (c *Controller) backoff() {
	if c.retryWait == 0 {
		c.retryWait = retryFirst
	} else {
		c.retryWait = min(2*c.retryWait, retryMax)
	}
	c.retryAt = c.now().Add(c.retryWait)
}

// sleep is how long to wait before deciding again.
func (c *Controller) sleep(d Decision) time.Duration {
	now := c.now()
	wake := now.Add(recheckEvery)
	for _, t := range []time.Time{d.Next, c.retryAt} {
		if t.After(now) && t.Before(wake) {
			wake = t
		}
	}
	return wake.Sub(now)
}

// auditVerdicts records each case's verdict when it is new or changed:
// accepted (valid, whether pending, active, ended or out of scope) or
// rejected (with the broken rules). A checkpoint follows any change.
func (c *Controller) auditVerdicts(ctx context.Context, d Decision) {
	changed := false
	for _, cd := range d.Cases {
		valid := cd.State != StateRefused
		fp := fingerprint(cd, valid)
		if c.seen[cd.ID] == fp {
			continue
		}
		c.seen[cd.ID] = fp
		changed = true
		if !valid {
			c.log.Warn("misuse case refused", "case", cd.ID, "why", cd.Reason)
			c.record(ctx, audit.Event{Kind: audit.CaseRejected, Actor: "service", Fields: []audit.Field{
				audit.Token("case", auditCase(cd.ID)), audit.Text("why", truncate(cd.Reason, 2000))}})
			continue
		}
		k := cd.Case
		c.record(ctx, audit.Event{Kind: audit.CaseAccepted, Actor: "service", Fields: []audit.Field{
			audit.Token("case", auditCase(cd.ID)), audit.Token("mode", k.Mode), audit.Time("start", k.Start),
			audit.Time("end", k.EffectiveEnd()), audit.Time("notice_posted_at", k.NoticePostedAt)}})
	}
	if changed {
		c.checkpoint(ctx)
	}
}

// fingerprint changes when the case's verdict or any of its fields does, so
// that extending a case is audited again but re-reading it is not.
func fingerprint(cd CaseDecision, valid bool) string {
	h := sha256.New()
	k := cd.Case
	fmt.Fprintf(h, "%v|%q|%q|%q|%q|%q|%s|%s|%s|%s|%q|%q|%q|%d", valid, cd.Reason, k.ID, k.Reason, k.Category,
		k.DeclaredBy+"\x00"+k.ApprovedBy, k.NoticePostedAt, k.Start, k.End, k.EndedAt, k.EndedBy, k.PCs, k.Mode, k.Snaplen)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// openExistingStore opens the traffic store at start only if one exists:
// with no case ever in force there is nothing to recover, and creating the
// store would write under traffic/ (G1).
func (c *Controller) openExistingStore(ctx context.Context) error {
	err := seal.Exists(c.opts.DataDir) // creates nothing
	if errors.Is(err, seal.ErrNoStore) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.openStore(ctx)
}

func (c *Controller) openStore(ctx context.Context) error {
	if c.store != nil {
		return nil
	}
	s, err := seal.Open(ctx, c.opts.DataDir, seal.Options{Recorder: c.opts.Audit, Now: c.now})
	if err != nil {
		return err
	}
	c.store = s
	return nil
}

// purge applies traffic retention (G6).
func (c *Controller) purge(ctx context.Context) {
	if c.store == nil {
		return
	}
	cfg := c.config()
	caseEnd := func(id string) (time.Time, bool) {
		for _, k := range cfg.Cases {
			if k.ID == id {
				e := k.EffectiveEnd()
				return e, !e.IsZero() && !c.now().Before(e)
			}
		}
		// A case no longer in the config ended no later than its last
		// record: its traffic must not outlive retention because the table
		// was deleted from the file.
		segs, err := c.store.Segments(ctx, seal.Filter{Case: id})
		if err != nil || len(segs) == 0 {
			return time.Time{}, false
		}
		var last time.Time
		for _, s := range segs {
			if s.To.After(last) {
				last = s.To
			}
		}
		return last, true
	}
	p, err := c.store.Purge(ctx, c.now(), caseEnd, cfg.Capture.TrafficRetention.D())
	if err != nil {
		c.log.Error("traffic retention", "err", err)
		return
	}
	if p.Deleted > 0 {
		c.log.Info("traffic retention deleted segments", "count", p.Deleted, "bytes", p.Bytes)
	}
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

func (c *Controller) config() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *Controller) setConfig(cfg *config.Config) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
