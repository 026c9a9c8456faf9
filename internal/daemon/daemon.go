package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/keyfile"
	"github.com/carrel-lib/carrel/internal/misuse"
	"github.com/carrel-lib/carrel/internal/witness"
)

// Intervals of the service's own chores. Variables so tests can shorten them.
var (
	heartbeatEvery = 5 * time.Second
	purgeEvery     = time.Hour
	pollEvery      = time.Second // config polling, beside file notifications
	settle         = 300 * time.Millisecond
	// The audit log is signed checkpointDelay after its last new entry, and
	// no later than checkpointMaxDelay after the first unsigned one, so that
	// `carrel audit verify` finds no unsigned entries for long (a steady
	// stream of entries, e.g. refused API calls, cannot postpone it).
	checkpointDelay    = 2 * time.Second
	checkpointMaxDelay = 10 * time.Second
)

// testHookHeartbeat sees the outcome of every heartbeat of the loop.
var testHookHeartbeat = func(error) {}

// Options configure Run.
type Options struct {
	ConfigPath string
	Version    string
	Log        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Ready, when set, is closed once the API accepts requests.
	Ready chan<- struct{}
	// BootID names the current boot of the PC (see boot.go); the
	// platform's when nil. Tests inject it to stage a restart of the PC.
	BootID func() (string, error)
	// WitnessDial connects to a witness's host:port; nil dials directly.
	// Under the hardened unit it is the relay's (witness.DialRelay).
	WitnessDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// WitnessBackoff is the wait before a push is retried after n failures
	// in a row; nil is witness.DefaultBackoff. Tests inject it.
	WitnessBackoff func(n int) time.Duration
	// Purge, when set, asks for booking retention runs besides the hourly
	// timer: for each channel received the daemon runs retention at Now
	// and closes the channel once the run is documented. With Now it lets a
	// test play a year of hourly runs through in seconds (internal/report).
	Purge <-chan chan struct{}
}

// Daemon is one run of the service.
type Daemon struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	start time.Time

	data     *config.DataDir // the data folder, held open
	audit    *audit.Log
	bookings *booking.Store
	api      *api.Server
	traffic  *misuse.Controller
	pusher   *witness.Pusher

	// running are the settings this run started with, in force until
	// the service restarts whatever the config says meanwhile.
	running restartSettings

	mu       sync.Mutex
	cfg      *config.Config // the config in force
	rejected string         // problems of the file on disk when it is refused
	// unreadableMsg is why the config file could not be read at the last
	// look ("" when it could); lastRead is the digest of what was read and
	// lastReadAt when it was first read, for settling; looks asks the loop
	// to look again.
	unreadableMsg string
	lastRead      [32]byte
	lastReadAt    time.Time
	looks         chan struct{}
	warnings      []string
	// pendingRestart says which settings of the config in force differ
	// from running (see notePendingRestart).
	pendingRestart []string
	nextPurge      time.Time
	lastPurged     booking.PurgeReport
}

// Files in the data folder.
const (
	bookingsFile = "bookings.db"
	patronKey    = "patron.key"
	lockFile     = "carrel.lock"
	runningFile  = "running" // present while a run has not stopped cleanly
)

// Run runs the service until ctx is cancelled, then stops cleanly. It
// returns an error when the service cannot start; the error says what to fix.
func Run(ctx context.Context, opts Options) error {
	d := &Daemon{opts: opts, log: opts.Log, now: opts.Now}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.opts.BootID == nil {
		d.opts.BootID = bootID
	}
	d.start = d.now()
	return d.run(ctx)
}

func (d *Daemon) run(ctx context.Context) (err error) {
	// The config and every folder on the way to it are judged on the one
	// file that is read; the data folder is judged and then held, and
	// every file in it is opened through the held folder.
	cfg, err := loadConfig(d.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	if err := config.CheckSocketDir(cfg.Booking.APISocket); err != nil {
		return fmt.Errorf("refusing to start: booking.api_socket: %w", err)
	}
	d.cfg = cfg
	d.running = restartSettingsOf(cfg)
	restrictUmask()
	data, err := config.OpenDataDir(cfg.Storage.DataDir, true)
	if err != nil {
		return sandboxHint(fmt.Errorf("refusing to start: storage.data_dir: %w", err), cfg.Storage.DataDir, "")
	}
	defer data.Close()
	d.data = data
	// Files are opened as /proc/self/fd/N/…; messages name the folder.
	d.log = slog.New(folderNamer{Handler: d.log.Handler(), data: data})
	defer func() { err = data.Named(err) }()
	defer func() { err = sandboxHint(err, cfg.Storage.DataDir, data.Path()) }()
	dataDir := data.Path()
	unlock, err := lockDataDir(data.Join(lockFile), data.Name())
	if err != nil {
		return err
	}
	defer unlock()

	d.audit, err = audit.OpenIn(dataDir, cfg.LogOrigin(), d.now)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	defer d.audit.Close()

	secret, created, err := booking.LoadOrCreateSecret(filepath.Join(dataDir, patronKey))
	if err != nil {
		return noRegisterYet(err, dataDir)
	}
	if created {
		d.record(ctx, audit.Event{Kind: audit.KeyCreated, Actor: "service",
			Fields: []audit.Field{audit.Token("key", "patron-hmac"), audit.Hash("fingerprint", fingerprint(secret))}})
	}
	d.bookings, err = booking.Open(filepath.Join(dataDir, bookingsFile), booking.Options{Secret: secret, Now: d.now})
	if err != nil {
		return err
	}
	defer d.bookings.Close()

	if err := d.recover(ctx, dataDir); err != nil {
		return err
	}
	d.record(ctx, audit.Event{Kind: audit.ServiceStart, Actor: "service", Fields: []audit.Field{
		audit.Token("version", tokenOr(d.opts.Version, "dev")), audit.Hash("config_sha256", cfg.SHA256[:]),
		audit.Int("pid", int64(os.Getpid()))}})
	d.record(ctx, audit.Event{Kind: audit.ConfigAccepted, Actor: "service", Fields: []audit.Field{
		audit.Hash("sha256", cfg.SHA256[:]), audit.Token("source", "start")}})
	d.checkpoint(ctx)

	d.purge(ctx)
	d.traffic = misuse.New(misuse.Options{DataDir: dataDir, Audit: d.audit, Log: d.log, Now: d.now})

	// A start that fails from here on is a clean stop: it is recorded, and
	// the run marker goes, or the next start would report an unclean stop
	// (and close open bookings for it).
	startFailed := func(err error) error {
		d.stop(context.WithoutCancel(ctx), "start-failed")
		d.removeRunMarker(dataDir)
		return err
	}
	// Checked again when the socket is made: the folder may have changed
	// since the start.
	if err := config.CheckSocketDir(cfg.Booking.APISocket); err != nil {
		return startFailed(fmt.Errorf("refusing to start: booking.api_socket: %w", err))
	}
	l, err := d.listen(cfg)
	if err != nil {
		return startFailed(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.api.Serve(l) }()
	d.log.Info("carrel started", "pc", cfg.PC.ID, "config", cfg.Path, "data", dataDir, "api", cfg.APIAddr(),
		"version", d.opts.Version)
	if d.opts.Ready != nil {
		close(d.opts.Ready)
	}

	var wg sync.WaitGroup
	loopCtx, cancel := context.WithCancel(ctx)
	d.pusher = d.newPusher(cfg)
	wg.Add(3)
	go func() { defer wg.Done(); d.traffic.Run(loopCtx, cfg) }()
	go func() { defer wg.Done(); d.loop(loopCtx) }()
	go func() { defer wg.Done(); d.pusher.Run(loopCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		runErr = fmt.Errorf("API server stopped: %w", runErr)
	}
	cancel()
	wg.Wait()

	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	if err := d.api.Shutdown(shutdownCtx); err != nil {
		d.log.Warn("API shutdown", "err", err)
	}
	reason := "signal"
	if runErr != nil {
		reason = "error"
	}
	d.stop(shutdownCtx, reason)
	d.pushShutdownCheckpoint(shutdownCtx)
	d.removeRunMarker(dataDir)
	d.log.Info("carrel stopped", "reason", reason)
	return runErr
}

// noRegisterYet adds to a damaged patron key's error that deleting the
// key costs nothing when the folder holds no booking register yet: what
// a first start killed by an older carrel while it made the key leaves.
func noRegisterYet(err error, dataDir string) error {
	if !errors.Is(err, booking.ErrSecretDamaged) {
		return err
	}
	if _, serr := os.Lstat(filepath.Join(dataDir, bookingsFile)); !errors.Is(serr, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%w; this data folder holds no booking register yet (no %s), so here deleting the key loses nothing", err, bookingsFile)
}

// recover closes what the previous run left open and forwards unaudited
// register events, before anything new is accepted.
//
// Open bookings stay open across a clean stop and start of the service on
// the same boot of the PC (an upgrade, a config roll-out, systemctl
// restart): the booking client ends them afterwards. They are closed as
// interrupted, at the last moment the service was known alive, only when
// that run did not stop cleanly (its run marker is still there) or the PC
// restarted since (the boot id changed): then no one is left to end them.
func (d *Daemon) recover(ctx context.Context, dataDir string) error {
	marker := filepath.Join(dataDir, runningFile)
	_, err := os.Stat(marker)
	unclean := err == nil
	last, err := d.bookings.LastAlive(ctx)
	if err != nil {
		return err
	}
	boot, err := d.opts.BootID()
	if err != nil {
		d.log.Warn("cannot tell whether the PC restarted since the last run; open bookings are closed only after an unclean stop", "err", err)
		boot = ""
	}
	bootState := "unknown"
	if last.Boot != "" && boot != "" {
		bootState = "same"
		if !sameBoot(last.Boot, boot) {
			bootState = "changed"
		}
	}
	rebooted := bootState == "changed"
	if unclean {
		ev := audit.Event{Kind: audit.ServiceUncleanStop, Actor: "service", Fields: []audit.Field{audit.Token("boot", bootState)}}
		if !last.At.IsZero() {
			ev.Fields = append(ev.Fields, audit.Time("last_alive", last.At))
		}
		d.record(ctx, ev)
		d.log.Warn("the previous run did not stop cleanly", "last_alive", last.At, "pc_restarted", bootState)
	} else if rebooted {
		d.log.Info("the PC restarted since the service last ran", "last_alive", last.At)
	}
	// Whole and durable (file and folder synced) before any booking is
	// taken: a power loss after that must find it.
	if err := keyfile.Replace(marker, fmt.Appendf(nil, "%d\n", os.Getpid()), ""); err != nil {
		return fmt.Errorf("writing run marker: %w", err)
	}
	reason := ""
	switch {
	case unclean && rebooted:
		reason = booking.InterruptedUncleanReboot
	case unclean:
		reason = booking.InterruptedUncleanStop
	case rebooted:
		reason = booking.InterruptedReboot
	}
	if reason != "" {
		n, at, err := d.bookings.CloseInterrupted(ctx, reason)
		if err != nil {
			return err
		}
		if n > 0 {
			d.log.Warn("closed open bookings as interrupted", "count", n, "at", at, "reason", reason)
		}
	} else if st, err := d.bookings.Stats(ctx); err == nil && st.Open > 0 {
		d.log.Info("open bookings stay open across the clean restart", "count", st.Open)
	}
	// The boot is recorded only after the close above is committed: a
	// crash in between leaves the old boot, and the next start closes them.
	if boot != "" {
		if err := d.bookings.MarkBoot(ctx, boot); err != nil {
			return err
		}
	}
	if err := d.bookings.Heartbeat(ctx); err != nil {
		return err
	}
	d.forward(ctx)
	return nil
}

func (d *Daemon) listen(cfg *config.Config) (net.Listener, error) {
	if err := api.GroupMissing(cfg.Booking.ClientGroup); err != nil {
		d.warn(err.Error())
	}
	l, auth, err := api.Listen(cfg.APIAddr(), cfg.Booking.ClientGroup)
	if err != nil {
		return nil, err
	}
	d.api = api.NewServer(api.Config{
		Bookings:     d.bookings,
		PC:           func() string { return d.config().PC.ID },
		Status:       d.status,
		Allow:        auth,
		Refused:      d.refused,
		PatronLookup: d.patronLookup,
		Log:          d.log,
	})
	return l, nil
}

// loop runs the service's chores until ctx ends.
func (d *Daemon) loop(ctx context.Context) {
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	cfg := d.config()
	checkpoint := time.NewTicker(cfg.Audit.CheckpointInterval.D())
	defer checkpoint.Stop()
	sign := time.NewTimer(time.Hour)
	sign.Stop() // armed when the log grows
	defer sign.Stop()
	var unsignedSince time.Time // the first entry since the last checkpoint; zero when none
	changes := d.watchConfig(ctx, cfg.SHA256[:])
	var beats heartbeatFailure
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.audit.Grown():
			now := time.Now()
			if unsignedSince.IsZero() {
				unsignedSince = now
			}
			sign.Reset(min(checkpointDelay, unsignedSince.Add(checkpointMaxDelay).Sub(now)))
		case <-sign.C:
			unsignedSince = time.Time{}
			if _, _, err := d.audit.CheckpointIfGrown(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("audit checkpoint", "err", err)
			}
		case <-heartbeat.C:
			testHookHeartbeat(d.heartbeat(ctx, &beats))
		case <-purge.C:
			d.purge(ctx)
		case done := <-d.opts.Purge:
			d.purge(ctx)
			close(done)
		case <-checkpoint.C:
			if _, made, err := d.audit.CheckpointIfGrown(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("audit checkpoint", "err", err)
			} else if made {
				d.log.Debug("audit checkpoint made")
			}
		case <-changes:
			if d.reload(ctx) {
				checkpoint.Reset(d.config().Audit.CheckpointInterval.D())
			}
		}
	}
}

// heartbeatFailure is the loop's record of heartbeats failing in a row.
type heartbeatFailure struct {
	since time.Time // the first failure; zero while heartbeats work
	count int
	msg   string // the error last logged
}

// heartbeat records that the service is alive. A failure is logged when
// heartbeats start failing and again only when the cause changes, and the
// recovery is logged with how long they failed: on a full disk every tick
// fails, and a line per tick would bury the log (status says disk full).
func (d *Daemon) heartbeat(ctx context.Context, f *heartbeatFailure) error {
	err := d.bookings.Heartbeat(ctx)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if f.count == 0 {
			f.since = time.Now()
		}
		f.count++
		if msg := err.Error(); msg != f.msg {
			f.msg = msg
			d.log.Error("heartbeat failing; logged again when it recovers or the cause changes", "err", err)
		}
	case f.count > 0:
		d.log.Info("heartbeat recovered", "failed_for", time.Since(f.since).Round(time.Millisecond), "failed", f.count)
		*f = heartbeatFailure{}
	}
	return err
}

// removeRunMarker marks the run as stopped cleanly.
func (d *Daemon) removeRunMarker(dataDir string) {
	if err := keyfile.Remove(filepath.Join(dataDir, runningFile)); err != nil {
		d.log.Warn("removing run marker", "err", err)
	}
}

// stop records the clean stop and signs a final checkpoint. A last
// heartbeat dates the stop: bookings left open are closed at that moment
// if the PC restarts before the next start.
func (d *Daemon) stop(ctx context.Context, reason string) {
	if err := d.bookings.Heartbeat(ctx); err != nil {
		d.log.Error("heartbeat at stop", "err", err)
	}
	d.record(ctx, audit.Event{Kind: audit.ServiceStop, Actor: "service", Fields: []audit.Field{audit.Token("reason", reason)}})
	d.checkpoint(ctx)
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) warn(msg string) {
	d.log.Warn(msg)
	d.mu.Lock()
	d.warnings = append(d.warnings, msg)
	d.mu.Unlock()
}

// record writes an audit entry. A failure to audit is logged loudly but does
// not stop the service: bookings must not be lost because the audit disk is
// full, and the gap is itself visible to verify (sequence numbers).
func (d *Daemon) record(ctx context.Context, e audit.Event) {
	if _, err := d.audit.Record(ctx, e); err != nil {
		d.log.Error("writing audit entry", "kind", e.Kind, "err", err)
	}
}

func (d *Daemon) checkpoint(ctx context.Context) {
	if _, err := d.audit.Checkpoint(ctx); err != nil {
		d.log.Error("signing audit checkpoint", "err", err)
	}
}

func (d *Daemon) refused(r api.Refusal) {
	f := append([]audit.Field{audit.Token("why", r.Why)}, accountFields(r.Peer)...)
	if r.Count > 1 {
		f = append(f, audit.Int("count", int64(r.Count)))
	}
	d.log.Warn("API request refused", "account", r.Peer.String(), "why", r.Why, "count", r.Count)
	d.record(context.Background(), audit.Event{Kind: audit.APIRefused, Actor: "api", Fields: f})
}

// patronLookup records a look-up of one patron's bookings: who looked and
// how many were found, never the card. The API withholds the result when
// this fails.
func (d *Daemon) patronLookup(p api.Peer, found int) error {
	_, err := d.audit.Record(context.Background(), audit.Event{Kind: audit.BookingPatronLookup, Actor: "api",
		Fields: append(accountFields(p), audit.Int("found", int64(found)))})
	if err != nil {
		return fmt.Errorf("recording a patron look-up: %w", err)
	}
	d.log.Info("patron look-up", "account", p.String(), "found", found)
	return nil
}

// accountFields name an API caller in the audit log: its account name, and
// its uid on Linux or its SID on Windows when the name is unknown or not a
// token (a Windows name may hold spaces).
func accountFields(p api.Peer) []audit.Field {
	var f []audit.Field
	name := p.Name
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		name = ""
	}
	if name != "" {
		f = append(f, audit.Token("account", name))
	}
	if p.SID == "" {
		f = append(f, audit.Int("uid", int64(p.UID)))
	} else if name == "" {
		f = append(f, audit.Token("account", p.SID))
	}
	return f
}

func tokenOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
