package capture

import "time"

// Sink receives encoded records from the engine's single writer goroutine.
// internal/seal implements it (capture must not import seal, nor seal capture;
// the daemon wires them).
type Sink interface {
	// Write appends one complete record — a JSON line (with its '\n') or one
	// pcapng block — whose packet time is ts. It must not keep rec.
	Write(rec []byte, ts time.Time) error
	// Due reports whether the open segment should be closed now (age or size).
	// The engine checks it at least once a second and after writes; when it is
	// true the engine flushes its flow table into the sink, then calls Cut.
	Due(now time.Time) bool
	// Cut seals the open segment; the next Write starts a new one (which the
	// sink begins with the header it was configured with, e.g. pcapng SHB+IDB).
	Cut() error
	// Close seals the open segment and releases the sink.
	Close() error
}
