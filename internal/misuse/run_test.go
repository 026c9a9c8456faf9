package misuse

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
)

// runRig starts Run on the rig in a goroutine. The returned stop cancels
// Run's context and waits for Run to return.
func runRig(t *testing.T, r *rig, at time.Duration, cases ...tcase) (stop func()) {
	t.Helper()
	var tables []string
	for _, c := range cases {
		tables = append(tables, c.String())
	}
	r.clock.set(t0.Add(at))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.c.Run(ctx, conf(t, nil, tables...))
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// stepDone waits until Run re-arms its timer, which it does once after
// every step, and returns the delay it armed.
func (r *rig) stepDone() time.Duration {
	r.t.Helper()
	select {
	case d := <-r.timer.resets:
		return d
	case <-time.After(time.Minute): // only a hung Run gets here
		r.t.Fatal("Run did not finish a step")
		return 0
	}
}

// TestRunShutdownWhileCapturing: the service's shutdown cancels Run's
// context while capture runs. The engine must be stopped by the
// controller, not by that context behind its back, and the stop must be
// in the audit log: a capture.start without its capture.stop is a record
// that lies.
func TestRunShutdownWhileCapturing(t *testing.T) {
	for i := range 50 {
		r := newRig(t)
		r.eng.started = make(chan struct{}, 1)
		stop := runRig(t, r, hour, tcase{id: "2026-a"})
		r.stepDone()
		if !r.eng.isRunning() {
			t.Fatalf("run %d: capture did not start: %v", i, r.acts.take())
		}
		stop()
		if r.eng.endedBy != "stop" {
			t.Fatalf("run %d: the engine's run was ended by %q; want by the controller's Stop", i, r.eng.endedBy)
		}
		if starts, stops := r.aud.count(audit.CaptureStart), r.aud.count(audit.CaptureStop); starts != 1 || stops != 1 {
			t.Fatalf("run %d: %d capture.start and %d capture.stop entries; want one each", i, starts, stops)
		}
		if !r.store.closed {
			t.Fatalf("run %d: the traffic store was not closed", i)
		}
	}
}

// TestRunWakesAtCaseBoundaries: Run arms its timer for the case's start,
// then rechecks while capturing, and a timer that fires at the end stops
// capture without any config change.
func TestRunWakesAtCaseBoundaries(t *testing.T) {
	r := newRig(t)
	runRig(t, r, 0, tcase{id: "2026-a", start: t0.Add(10 * sec), end: t0.Add(hour)})
	if d := r.stepDone(); d != 10*sec {
		t.Errorf("first wait = %v; want 10s, the case's start", d)
	}
	r.clock.set(t0.Add(10 * sec))
	r.timer.c <- r.clock.Now()
	if d := r.stepDone(); d != recheckEvery {
		t.Errorf("wait while capturing = %v; want the recheck, %v", d, recheckEvery)
	}
	if !r.eng.isRunning() {
		t.Fatalf("capture did not start at the case's start: %v", r.acts.take())
	}
	r.clock.set(t0.Add(hour - 20*sec))
	r.timer.c <- r.clock.Now()
	if d := r.stepDone(); d != 20*sec {
		t.Errorf("wait before the end = %v; want 20s", d)
	}
	r.clock.set(t0.Add(hour))
	r.timer.c <- r.clock.Now()
	r.stepDone()
	if r.eng.isRunning() || r.c.Status().On {
		t.Fatal("capture still on at the case's end")
	}
}

// TestRunEngineEndsByItself: a run that ends by itself wakes Run at once.
func TestRunEngineEndsByItself(t *testing.T) {
	r := newRig(t)
	runRig(t, r, hour, tcase{id: "2026-a"})
	r.stepDone()
	r.eng.fail(fmt.Errorf("reading packets: interface went down"))
	if d := r.stepDone(); d != retryFirst {
		t.Errorf("wait after the failure = %v; want the first backoff, %v", d, retryFirst)
	}
	if n := r.aud.count(audit.CaptureStop); n != 1 {
		t.Errorf("capture.stop entries = %d; want 1", n)
	}
}

// TestRunApplyStorm: configs applied from many goroutines while Run runs.
// Only the newest counts; what runs in the end is what the last config
// says, and every capture.start has its capture.stop or is the one run
// still under way.
func TestRunApplyStorm(t *testing.T) {
	r := newRig(t)
	runRig(t, r, hour)
	r.stepDone()
	drained := make(chan struct{})
	defer close(drained)
	go func() { // Run's re-arms are not what this test counts
		for {
			select {
			case <-r.timer.resets:
			case <-drained:
				return
			}
		}
	}()
	with := conf(t, nil, tcase{id: "2026-a"}.String())
	refused := conf(t, nil, tcase{id: "2026-a", approvedBy: "-"}.String())
	other := conf(t, nil, tcase{id: "2026-b"}.String())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				switch (g + i) % 3 {
				case 0:
					r.c.Apply(with)
				case 1:
					r.c.Apply(refused)
				default:
					r.c.Apply(other)
				}
			}
		}()
	}
	wg.Wait()
	r.c.Apply(other)
	deadline := time.Now().Add(time.Minute) // only stops a hang
	for {
		st := r.c.Status()
		if st.On && st.Case == "2026-b" && len(st.Cases) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the storm: %+v; want capture under 2026-b", st)
		}
		time.Sleep(time.Millisecond)
	}
	if starts, stops := r.aud.count(audit.CaptureStart), r.aud.count(audit.CaptureStop); starts != stops+1 {
		t.Errorf("%d capture.start and %d capture.stop entries; want one more start than stops", starts, stops)
	}
}
