package daemon

import (
	"context"
	"fmt"

	"github.com/carrel-lib/carrel/internal/audit"
)

// purge applies booking retention and forwards the documented run to the
// audit log.
func (d *Daemon) purge(ctx context.Context) {
	cfg := d.config()
	now := d.now()
	cutoff := now.Add(-cfg.Booking.Retention.D())
	rep, err := d.bookings.Purge(ctx, cutoff)
	if err != nil {
		d.log.Error("booking retention", "err", err)
		return
	}
	d.mu.Lock()
	d.lastPurged = rep
	d.nextPurge = now.Add(purgeEvery)
	d.mu.Unlock()
	if rep.Deleted > 0 {
		d.log.Info("booking retention deleted bookings", "count", rep.Deleted, "from", rep.From, "to", rep.To)
	}
	d.forward(ctx)
}

// forward hands the register's unaudited events to the audit log. Each
// carries a stable Once key, so a crash between recording and marking can
// never write an entry twice.
func (d *Daemon) forward(ctx context.Context) {
	evs, err := d.bookings.PendingEvents(ctx)
	if err != nil {
		d.log.Error("reading booking events", "err", err)
		return
	}
	for _, e := range evs {
		ev := audit.Event{Actor: "service", Once: fmt.Sprintf("bookings/%d/%d", e.ID, e.At.UnixMilli())}
		switch e.Kind {
		case "retention":
			ev.Kind = audit.BookingRetention
			ev.Fields = []audit.Field{audit.Int("deleted", int64(e.Count)), audit.Time("cutoff", e.Cutoff)}
			if !e.From.IsZero() {
				ev.Fields = append(ev.Fields, audit.Time("from", e.From), audit.Time("to", e.To))
			}
		case "interrupted":
			ev.Kind = audit.BookingInterrupted
			ev.Fields = []audit.Field{audit.Int("count", int64(e.Count)), audit.Time("at", e.At)}
			if e.Reason != "" {
				ev.Fields = append(ev.Fields, audit.Token("reason", e.Reason))
			}
		default:
			d.log.Error("unknown booking event kind", "kind", e.Kind)
			continue
		}
		if _, err := d.audit.Record(ctx, ev); err != nil {
			d.log.Error("writing audit entry", "kind", ev.Kind, "err", err)
			return // keep order: try again at the next run
		}
		if err := d.bookings.MarkAudited(ctx, e.ID); err != nil {
			d.log.Error("marking booking event audited", "err", err)
			return
		}
	}
}
