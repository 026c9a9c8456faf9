package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/witness"
)

// newPusher makes the witness pusher for the run: it pushes every new
// checkpoint to the witnesses of the config in force, on goroutines of its
// own, so that a witness that is slow or down never holds up bookings or
// capture.
func (d *Daemon) newPusher(cfg *config.Config) *witness.Pusher {
	p := witness.New(witness.Options{Log: d.audit, Logger: d.log.With("component", "witness"),
		Dial: d.opts.WitnessDial, Backoff: d.opts.WitnessBackoff, UserAgent: "carrel/" + tokenOr(d.opts.Version, "dev")})
	p.SetTargets(witnessTargets(cfg))
	return p
}

// shutdownPush bounds the push of the shutdown checkpoint: a witness that
// is down must not hold up the stop (systemd allows 30 s).
var shutdownPush = 5 * time.Second

// pushShutdownCheckpoint pushes the checkpoint signed at stop, so that the
// witnesses know the log as it was when the service stopped. A witness
// that does not answer in time gets it at the next start.
func (d *Daemon) pushShutdownCheckpoint(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, shutdownPush)
	defer cancel()
	d.pusher.PushNow(ctx)
}

// witnessTargets are the config's witnesses. Their keys were judged by
// config.Validate; one that still fails to parse is left out.
func witnessTargets(cfg *config.Config) []witness.Target {
	var ts []witness.Target
	for _, w := range cfg.Audit.Witnesses {
		k, err := audit.ParseWitnessKey(w.Key)
		if err != nil {
			continue
		}
		ts = append(ts, witness.Target{Name: w.Name, URL: w.URL, Key: k})
	}
	return ts
}

// witnessStatus fills the witnesses' part of the status: every configured
// witness, and any witness with a refusal not yet acknowledged.
func (d *Daemon) witnessStatus(ctx context.Context, cfg *config.Config, st *api.Status) {
	states, err := d.audit.WitnessStates(ctx)
	if err != nil {
		st.Warnings = append(st.Warnings, fmt.Sprintf("cannot read the witnesses' state: %v", err))
		return
	}
	byName := map[string]audit.WitnessState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	var keys []audit.WitnessKey
	listed := map[string]bool{}
	for _, w := range cfg.Audit.Witnesses {
		listed[w.Name] = true
		ws := api.WitnessStatus{Name: w.Name, URL: w.URL}
		k, err := audit.ParseWitnessKey(w.Key)
		if err == nil {
			keys = append(keys, k)
		}
		if s, ok := byName[w.Name]; ok && s.Key == w.Key {
			fillWitness(&ws, s)
		} else if ok && s.Refusal.Pending() {
			ws.Refusal = refusalStatus(s.Refusal)
		}
		st.Audit.Witnesses = append(st.Audit.Witnesses, ws)
	}
	for _, s := range states {
		if !listed[s.Name] && s.Refusal.Pending() {
			ws := api.WitnessStatus{Name: s.Name}
			fillWitness(&ws, s)
			st.Audit.Witnesses = append(st.Audit.Witnesses, ws)
		}
	}
	for _, ws := range st.Audit.Witnesses {
		if r := ws.Refusal; r != nil && r.AcknowledgedAt == nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("witness %s refused the audit log (%s) at %s: it is not an extension of what the witness cosigned; "+
				"see the README (Witnesses), then acknowledge with: carrel audit witness ack %s", ws.Name, r.Why, r.At.Format(time.RFC3339), ws.Name))
		}
	}
	if len(cfg.Audit.Witnesses) > 0 {
		st.Audit.WitnessQuorum = cfg.Audit.WitnessQuorum
		if cc, err := d.audit.LatestCosigned(ctx, keys, cfg.Audit.WitnessQuorum); err == nil {
			st.Audit.Witnessed = cc.Checkpoint.Size
		}
	}
}

func fillWitness(ws *api.WitnessStatus, s audit.WitnessState) {
	ws.Cosigned, ws.Error = s.Size, s.Error
	if !s.Cosigned.IsZero() {
		t := s.Cosigned.UTC()
		ws.CosignedAt = &t
	}
	if !s.ErrorAt.IsZero() && s.Error != "" {
		t := s.ErrorAt.UTC()
		ws.ErrorAt = &t
	}
	if s.Refusal != nil {
		ws.Refusal = refusalStatus(s.Refusal)
	}
}

func refusalStatus(r *audit.Refusal) *api.WitnessRefusal {
	out := &api.WitnessRefusal{Why: r.Why, Detail: r.Detail, At: r.At.UTC(), WitnessSize: r.WitnessSize, LogSize: r.LogSize,
		Entry: r.Entry, AcknowledgedBy: r.AckedBy}
	if !r.AckedAt.IsZero() {
		t := r.AckedAt.UTC()
		out.AcknowledgedAt = &t
	}
	return out
}
