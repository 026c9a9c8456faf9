package misuse

import (
	"context"
	"errors"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/seal"
)

// Store is what the controller needs of the traffic store: *seal.Store,
// behind sealStore, is the real one.
type Store interface {
	// NewSink starts the writer one capture run seals its records with.
	NewSink(o seal.WriterOptions) (capture.Sink, error)
	Usage(ctx context.Context) (seal.Usage, error)
	Segments(ctx context.Context, f seal.Filter) ([]seal.Segment, error)
	Purge(ctx context.Context, now time.Time, caseEnd seal.CaseEnd, retention time.Duration) (seal.Purged, error)
	// Close releases the store; every sink must have been closed.
	Close() error
}

// OpenStore opens the traffic store. With create false it opens only a
// store that exists, and returns nil and no error when there is none.
type OpenStore func(ctx context.Context, create bool) (Store, error)

// sealStore is a *seal.Store as a Store.
type sealStore struct{ *seal.Store }

func (s sealStore) NewSink(o seal.WriterOptions) (capture.Sink, error) { return s.NewWriter(o) }

// openSealStore is the real OpenStore: the store under dataDir/traffic.
func openSealStore(dataDir string, rec audit.Recorder, now func() time.Time) OpenStore {
	return func(ctx context.Context, create bool) (Store, error) {
		if !create {
			err := seal.Exists(dataDir) // creates nothing
			if errors.Is(err, seal.ErrNoStore) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
		}
		s, err := seal.Open(ctx, dataDir, seal.Options{Recorder: rec, Now: now})
		if err != nil {
			return nil, err
		}
		return sealStore{s}, nil
	}
}

// openExistingStore opens the traffic store at start only if one exists:
// with no case ever in force there is nothing to recover, and creating the
// store would write under traffic/ (G1).
func (c *Controller) openExistingStore(ctx context.Context) error {
	if c.store != nil {
		return nil
	}
	s, err := c.opts.OpenStore(ctx, false)
	if err != nil {
		return err
	}
	if s != nil {
		c.store = s
	}
	return nil
}

// openStore opens the traffic store, creating it if needed: capture is
// about to start.
func (c *Controller) openStore(ctx context.Context) error {
	if c.store != nil {
		return nil
	}
	s, err := c.opts.OpenStore(ctx, true)
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
	cfg := c.cfg
	now := c.now()
	caseEnd := func(id string) (time.Time, bool) {
		for _, k := range cfg.Cases {
			if k.ID == id {
				e := k.EffectiveEnd()
				return e, !e.IsZero() && !now.Before(e)
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
	p, err := c.store.Purge(ctx, now, caseEnd, cfg.Capture.TrafficRetention.D())
	if err != nil {
		c.log.Error("traffic retention", "err", err)
		return
	}
	if p.Deleted > 0 {
		c.log.Info("traffic retention deleted segments", "count", p.Deleted, "bytes", p.Bytes)
	}
}
