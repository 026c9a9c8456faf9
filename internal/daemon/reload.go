package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

// watchConfig returns a channel that receives when the config file may have
// changed. It watches the folder, not the file, because editors and
// deployment tools replace files by rename; and it also polls the file's
// digest, because notifications are lost on some network and virtual file
// systems. A change is reported once the file has been quiet for settle, so
// that a file being written in place is not read half-written; either way a
// change is seen within two seconds.
//
// The baseline is the digest of the config in force, not of the file when
// the watch begins: a change written between loading the config and
// starting the watch must not go unnoticed.
func (d *Daemon) watchConfig(ctx context.Context, baseline []byte) <-chan struct{} {
	out := make(chan struct{}, 1)
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
		last := baseline
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
				if now := digest(path); !bytes.Equal(now, last) {
					last = now
					quiet.Reset(settle)
				}
			case <-quiet.C:
				last = digest(path)
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

func digest(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte("error: " + err.Error())
	}
	s := sha256.Sum256(b)
	return s[:]
}

// reload reads the config file again. A file that is invalid, or that other
// accounts could write, is refused and the config in force stays; the refusal
// is logged, audited and shown in status. It reports whether a new config
// was put in force.
func (d *Daemon) reload(ctx context.Context) bool {
	cur := d.config()
	next, err := config.Load(d.opts.ConfigPath)
	if err == nil {
		err = config.CheckPermissions(d.opts.ConfigPath, next.Storage.DataDir)
	}
	if err != nil {
		d.reject(ctx, next, err)
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
	d.warnRestart(cur, next)
	d.mu.Lock()
	d.cfg = next
	d.mu.Unlock()
	d.traffic.Apply(next)
	d.log.Info("config reloaded", "sha256", shortHash(next.SHA256[:]))
	return true
}

func (d *Daemon) reject(ctx context.Context, bad *config.Config, err error) {
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
	if bad != nil {
		f = append(f, audit.Hash("sha256", bad.SHA256[:]))
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
	switch {
	case errors.As(err, &ps):
		for _, p := range ps {
			keys = append(keys, p.Key)
		}
	case errors.As(err, &pe):
		for _, p := range pe.Problems {
			keys = append(keys, "permissions of "+p.Path)
		}
	default:
		keys = []string{"file could not be read"}
	}
	return keys
}

// warnRestart tells the operator about settings that only take effect when
// the service restarts.
func (d *Daemon) warnRestart(cur, next *config.Config) {
	if cur.Storage.DataDir != next.Storage.DataDir {
		d.warn("storage.data_dir changed; it takes effect when the service restarts")
	}
	if cur.APIAddr() != next.APIAddr() || cur.Booking.ClientGroup != next.Booking.ClientGroup {
		d.warn("the API address or booking-client group changed; it takes effect when the service restarts")
	}
}
