package seal_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

func pending(t *testing.T, s *seal.Store) int {
	t.Helper()
	n, err := s.PendingAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSealedSegmentWaitsForTheAuditLog(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{})
	if err := w.Write(jsonRecord(1), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.rec.setFail(errAuditDown)
	err := w.Cut()
	if !errors.Is(err, errAuditDown) || !strings.Contains(err.Error(), "waits in the outbox") {
		t.Errorf("Cut() with the audit log down = %v; want it to say the entry waits", err)
	}
	// The segment itself is sealed and indexed regardless.
	segs := e.segments(seal.Filter{})
	if len(segs) != 1 || segs[0].State != seal.StateSealed {
		t.Fatalf("Segments() = %+v; want one sealed", segs)
	}
	if err := e.store.Check(context.Background(), segs[0].Name); err != nil {
		t.Errorf("Check() = %v; want nil", err)
	}
	if n := pending(t, e.store); n != 1 {
		t.Errorf("PendingAudit() = %d; want 1", n)
	}
	// The writer goes on; its next segment's entry queues behind.
	if err := w.Write(jsonRecord(2), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if n := pending(t, e.store); n != 2 {
		t.Errorf("PendingAudit() = %d; want 2", n)
	}

	e.rec.setFail(nil)
	e.reopen() // Open forwards
	if n := pending(t, e.store); n != 0 {
		t.Errorf("PendingAudit() after reopen = %d; want 0", n)
	}
	if err := e.store.Forward(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := e.rec.of(audit.SegmentSealed)
	if len(ev) != 2 {
		t.Fatalf("segment.sealed entries = %d; want 2 (neither lost nor doubled)", len(ev))
	}
	if field(ev[0], "name") != segs[0].Name || ev[0].Once != "segment:"+segs[0].Name {
		t.Errorf("first entry = %+v; want the first segment with Once segment:<name>", ev[0])
	}
}
