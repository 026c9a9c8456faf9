//go:build linux

package witness

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/witness/witnesstest"
)

// benchLog is a log registered at a running litewitness, and a Pusher for
// it, directly or through a relay.
func benchLog(b *testing.B, relay bool) (*audit.Log, *Pusher) {
	b.Helper()
	w := witnesstest.Start(b, witnesstest.Options{})
	dir := b.TempDir()
	l, err := audit.Open(filepath.Join(dir, audit.DBFile), audit.Options{Origin: origin, KeyPath: filepath.Join(dir, audit.KeyFile)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	w.AddLog(origin, l.Verifier())
	k, err := audit.ParseWitnessKey(w.Key)
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Log: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if relay {
		allowed, err := Resolve(context.Background(), []string{w.URL}, nil)
		if err != nil {
			b.Fatal(err)
		}
		sock := filepath.Join(b.TempDir(), "relay.sock")
		ln, err := ListenRelay(sock)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &Relay{Allowed: allowed, Log: o.Logger}
		done := make(chan struct{})
		go func() { r.Serve(ctx, ln); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
		o.Dial = DialRelay(sock)
	}
	p := New(o)
	p.SetTargets([]Target{{Name: "w1", URL: w.URL, Key: k}})
	return l, p
}

// step records one entry and signs a checkpoint: what the service does
// for every change it audits.
func step(b *testing.B, l *audit.Log) {
	ctx := context.Background()
	if _, err := l.Record(ctx, audit.Event{Kind: audit.ServiceStop, Actor: "bench", Fields: []audit.Field{audit.Token("reason", "bench")}}); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCheckpoint is one entry and its checkpoint, without a witness:
// the baseline the push is added to.
func BenchmarkCheckpoint(b *testing.B) {
	l, _ := benchLog(b, false)
	for b.Loop() {
		step(b, l)
	}
}

// BenchmarkCheckpointToCosignature is one entry, its checkpoint, and the
// push to a real litewitness on loopback until its cosignature is stored:
// the time from a checkpoint to its cosignature, less the service's
// checkpoint delay (audit.checkpoint_interval's 2 s after the last entry).
func BenchmarkCheckpointToCosignature(b *testing.B) {
	for _, relay := range []bool{false, true} {
		name := "direct"
		if relay {
			name = "relay"
		}
		b.Run(name, func(b *testing.B) {
			l, p := benchLog(b, relay)
			ctx := context.Background()
			for b.Loop() {
				step(b, l)
				for _, r := range p.PushNow(ctx) {
					if !r.Cosigned {
						b.Fatalf("not cosigned: %+v", r)
					}
				}
			}
		})
	}
}
