package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// loadConfig reads and judges the config file; tests replace it to see
// or fail each reading.
var loadConfig = config.Load

// checkDataDir judges a data folder a new config names; tests replace it
// to stand for a folder the unit's sandbox hides.
var checkDataDir = config.CheckDataDir

// watchConfig returns a channel that receives whenever the config file is
// to be looked at again: at every poll, and settle after a notification
// for the file. It watches the folder, not the file, because editors and
// deployment tools replace files by rename; and it polls too, because
// notifications are lost on some network and virtual file systems, and
// because a file refused for its permissions must be taken up once they
// are fixed even if its content never changes.
//
// The baseline is the digest of the config in force, not of the file when
// the watch begins: a change written between loading the config and
// starting the watch must not go unnoticed.
func (d *Daemon) watchConfig(ctx context.Context, baseline []byte) <-chan struct{} {
	out := make(chan struct{}, 1)
	d.mu.Lock()
	copy(d.lastRead[:], baseline)
	d.looks = out
	d.mu.Unlock()
	path := d.opts.ConfigPath
	var events chan fsnotify.Event
	var errs chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(path)); err != nil {
			w.Close()
		} else {
			events, errs = w.Events, w.Errors
		}
	}
	if err != nil {
		d.log.Warn("cannot watch the config folder; polling only", "err", err)
	}
	go func() {
		if events != nil {
			defer w.Close()
		}
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		quiet := time.NewTimer(time.Hour)
		quiet.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				if filepath.Clean(ev.Name) == filepath.Clean(path) {
					quiet.Reset(settle)
				}
			case err := <-errs:
				d.log.Warn("config watch", "err", err)
			case <-tick.C:
				look(out)
			case <-quiet.C:
				look(out)
			}
		}
	}()
	return out
}

func look(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// reload reads the config file again and puts it in force when it is
// valid, safe and new. A file whose content or permissions are wrong is
// refused and the config in force stays; the refusal is logged, audited
// once and shown in status, and judged again at every look, so a file
// refused for its permissions is taken up once they are fixed. A file that
// cannot be read at all (EMFILE, EIO, gone) is not a refusal: it says
// nothing about the file, so it is logged and read again at the next look.
//
// Content is acted on only once it has read the same for settle, so that
// a file being written in place is not judged half-written. It reports
// whether a new config was put in force.
func (d *Daemon) reload(ctx context.Context) bool {
	cur := d.config()
	next, err := loadConfig(d.opts.ConfigPath)
	var sha [32]byte
	var refused *config.Refused
	switch {
	case errors.As(err, &refused):
		sha = refused.SHA256
	case err != nil:
		d.unreadable(err)
		return false
	default:
		sha = next.SHA256
	}
	now := time.Now()
	d.mu.Lock()
	if sha != d.lastRead {
		d.lastRead, d.lastReadAt = sha, now
	}
	wait := d.lastReadAt.Add(settle).Sub(now)
	looks := d.looks
	d.mu.Unlock()
	if wait > 0 {
		time.AfterFunc(wait, func() { look(looks) })
		return false
	}
	var unjudged []string
	if err == nil {
		if unjudged, err = d.checkPaths(next); err != nil && !config.IsRefusal(err) {
			d.unreadable(err)
			return false
		}
	}
	d.mu.Lock()
	wasUnreadable := d.unreadableMsg != ""
	d.unreadableMsg = ""
	d.mu.Unlock()
	if wasUnreadable {
		d.log.Info("config file can be read again")
	}
	if err != nil {
		d.reject(ctx, sha, err)
		return false
	}
	d.mu.Lock()
	wasRejected := d.rejected != ""
	d.rejected = ""
	d.mu.Unlock()
	if next.SHA256 == cur.SHA256 {
		if wasRejected {
			d.log.Info("config file is valid again; it is the one already in force")
		}
		return false
	}
	d.record(ctx, audit.Event{Kind: audit.ConfigAccepted, Actor: "service", Fields: []audit.Field{
		audit.Hash("sha256", next.SHA256[:]), audit.Token("source", "reload")}})
	d.notePendingRestart(next, unjudged)
	d.mu.Lock()
	d.cfg = next
	d.mu.Unlock()
	d.traffic.Apply(next)
	d.pusher.SetTargets(witnessTargets(next))
	d.log.Info("config reloaded", "sha256", shortHash(next.SHA256[:]))
	return true
}

// checkPaths judges the folders a new config names, by name: they take
// effect only when the service restarts, but a config that names a data
// folder or socket folder that other accounts can change is refused now.
// A new folder that cannot be looked at now (the unit's sandbox hides
// home folders from the service) is no reason to hold back the rest of
// the config: it is judged when the service restarts and opens it, and
// unjudged says so, per key.
func (d *Daemon) checkPaths(c *config.Config) (unjudged []string, err error) {
	var ps []config.PathProblem
	var pe *config.PermissionError
	for _, f := range []struct {
		key, path string
		changed   bool
		err       error
	}{
		{"storage.data_dir", c.Storage.DataDir, c.Storage.DataDir != d.running.dataDir, checkDataDir(c.Storage.DataDir)},
		{"booking.api_socket", c.Booking.APISocket, c.APIAddr() != d.running.apiAddr, config.CheckSocketDir(c.Booking.APISocket)},
	} {
		switch {
		case errors.As(f.err, &pe):
			ps = append(ps, pe.Problems...)
		case f.err != nil && f.changed:
			unjudged = append(unjudged, fmt.Sprintf("%s %q could not be checked now (%v); it is checked when the service restarts",
				f.key, f.path, f.err))
		case f.err != nil:
			return nil, f.err
		}
	}
	if len(ps) == 0 {
		return unjudged, nil
	}
	return nil, &config.Refused{Path: d.opts.ConfigPath, SHA256: c.SHA256, Permissions: &config.PermissionError{Problems: ps}}
}

// unreadable logs, once per distinct error, that the config file could
// not be read; the config in force stays and nothing is audited.
func (d *Daemon) unreadable(err error) {
	msg := err.Error()
	d.mu.Lock()
	same := d.unreadableMsg == msg
	d.unreadableMsg = msg
	d.mu.Unlock()
	if !same {
		d.log.Warn("cannot read the config file; the config in force stays, trying again", "err", err)
	}
}

func (d *Daemon) reject(ctx context.Context, sha [32]byte, err error) {
	msg := err.Error()
	d.mu.Lock()
	same := d.rejected == msg
	d.mu.Unlock()
	if same {
		return // already reported; the poll sees the same broken file again
	}
	d.log.Error("config refused; the previous config stays in force", "err", err)
	keys := problemKeys(err)
	f := []audit.Field{audit.Text("problems", strings.Join(keys, ", ")), audit.Int("count", int64(len(keys)))}
	if sha != ([32]byte{}) {
		f = append(f, audit.Hash("sha256", sha[:]))
	}
	// Audited before status shows it, so that whoever sees the refusal can
	// find its entry.
	d.record(ctx, audit.Event{Kind: audit.ConfigRejected, Actor: "service", Fields: f})
	d.mu.Lock()
	d.rejected = msg
	d.mu.Unlock()
}

// problemKeys lists the keys and rules that failed, without the values that
// the file held: audit entries carry no personal data, and a config value
// may be a staff member's name.
func problemKeys(err error) []string {
	var ps config.Problems
	var pe *config.PermissionError
	var keys []string
	if errors.As(err, &pe) {
		for _, p := range pe.Problems {
			keys = append(keys, "permissions of "+p.Path)
		}
	}
	if errors.As(err, &ps) {
		for _, p := range ps {
			keys = append(keys, p.Key)
		}
	}
	return keys
}

// restartSettings are the settings a running service keeps until it
// restarts: its data folder is held open, its API listener made.
type restartSettings struct {
	dataDir, apiAddr, clientGroup string
}

func restartSettingsOf(c *config.Config) restartSettings {
	return restartSettings{dataDir: c.Storage.DataDir, apiAddr: c.APIAddr(), clientGroup: c.Booking.ClientGroup}
}

// notePendingRestart records which settings of next, the config just put
// in force, differ from those the service runs with: status shows them
// for as long as they differ, and the log says so once when each appears.
// A change back to the value in use clears it. unjudged are checkPaths'
// notes on new folders it could not judge.
func (d *Daemon) notePendingRestart(next *config.Config, unjudged []string) {
	run, want := d.running, restartSettingsOf(next)
	msgs := unjudged
	if want.dataDir != run.dataDir {
		msgs = append(msgs, fmt.Sprintf("storage.data_dir changed to %q; the service keeps its data in %q until it restarts",
			want.dataDir, run.dataDir))
	}
	if want.apiAddr != run.apiAddr || want.clientGroup != run.clientGroup {
		msgs = append(msgs, "the API address or booking-client group changed; it takes effect when the service restarts")
	}
	d.mu.Lock()
	before := d.pendingRestart
	d.pendingRestart = msgs
	d.mu.Unlock()
	for _, m := range msgs {
		if !slices.Contains(before, m) {
			d.log.Warn(m)
		}
	}
	if len(before) > 0 && len(msgs) == 0 {
		d.log.Info("the settings that take effect at a restart are back to those in use")
	}
}
