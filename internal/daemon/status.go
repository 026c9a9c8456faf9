package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/misuse"
)

// status answers GET /v1/status.
func (d *Daemon) status(ctx context.Context) (api.Status, error) {
	cfg := d.config()
	st := api.Status{
		Version:      d.opts.Version,
		PC:           cfg.PC.ID,
		DataDir:      d.running.dataDir, // the folder in use, not one configured since
		Config:       cfg.Path,
		ConfigSHA256: hex.EncodeToString(cfg.SHA256[:]),
		Started:      d.start.UTC(),
		Retention:    cfg.Booking.Retention.String(),
	}
	ts := d.traffic.Status()
	st.Mode, st.ModeReason = "bookings-only", ts.Reason
	if ts.On {
		st.Mode = "capturing"
	}
	st.Capture = captureStatus(ts)
	bs, err := d.bookings.Stats(ctx)
	if err != nil {
		return api.Status{}, err
	}
	st.Bookings = api.BookingStats{Count: bs.Count, Open: bs.Open}
	if !bs.Oldest.IsZero() {
		o := bs.Oldest
		st.Bookings.Oldest = &o
	}
	if since, n := d.bookings.DiskFull(); n > 0 {
		st.DiskFull = &api.DiskFull{Since: since.UTC(), Refused: n}
	}
	st.Audit.Origin = d.audit.Origin()
	if n, err := d.audit.Size(ctx); err == nil {
		st.Audit.Entries = n
	}
	if cp, err := d.audit.Latest(ctx); err == nil {
		st.Audit.Checkpointed = cp.Size
	}
	d.witnessStatus(ctx, cfg, &st)
	d.mu.Lock()
	st.ConfigRejected = d.rejected
	st.NextPurge = d.nextPurge.UTC()
	st.Warnings = append(append(st.Warnings, d.warnings...), d.pendingRestart...)
	d.mu.Unlock()
	return st, nil
}

func fingerprint(secret []byte) []byte {
	// The fingerprint names the key in the audit log without revealing it.
	s := sha256.Sum256(append([]byte("carrel patron-hmac key fingerprint\x00"), secret...))
	return s[:]
}

func shortHash(b []byte) string { return hex.EncodeToString(b)[:12] }

func captureStatus(ts misuse.Status) *api.CaptureStatus {
	cs := &api.CaptureStatus{On: ts.On, Case: ts.Case, Mode: ts.Mode, Interface: ts.Interface,
		Packets: ts.Packets, Drops: ts.Drops, Segments: ts.Segments, Bytes: ts.Bytes}
	if !ts.On {
		cs.Reason = ts.Reason
	}
	if !ts.Until.IsZero() {
		u := ts.Until.UTC()
		cs.Until = &u
	}
	if !ts.Next.IsZero() {
		n := ts.Next.UTC()
		cs.NextCheck = &n
	}
	for _, c := range ts.Cases {
		cs.Cases = append(cs.Cases, api.CaseInfo{ID: c.ID, State: c.State, Reason: c.Reason})
	}
	return cs
}
