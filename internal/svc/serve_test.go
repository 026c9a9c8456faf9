package svc

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// fakeManager is what kardianos/service does in Run: start the program,
// wait for the manager's stop request, stop the program.
type fakeManager struct {
	p    *program
	stop chan struct{}
}

func (m *fakeManager) Run() error {
	if err := m.p.Start(nil); err != nil {
		return err
	}
	<-m.stop
	return m.p.Stop(nil)
}

func newProgram(run RunFunc) *program {
	return &program{run: run, log: slog.New(slog.DiscardHandler), ended: make(chan error, 1)}
}

// serveWithin runs serve and fails the test if it hangs.
func serveWithin(t *testing.T, m *fakeManager) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- serve(m, m.p) }()
	select {
	case err := <-res:
		return err
	case <-time.After(time.Minute): // only a hang gets here
		t.Fatal("serve did not return")
		return nil
	}
}

// TestDaemonFailureIsReturned: a daemon that cannot start (or fails later)
// under the service manager has its error returned to the caller, which
// maps it to a non-zero exit code in main. It used to call os.Exit from
// the daemon's goroutine, which ended this test binary.
func TestDaemonFailureIsReturned(t *testing.T) {
	listenErr := errors.New("listening on API socket: address in use")
	m := &fakeManager{stop: make(chan struct{})}
	m.p = newProgram(func(context.Context, *slog.Logger) error { return listenErr })
	if err := serveWithin(t, m); !errors.Is(err, listenErr) {
		t.Errorf("serve() = %v; want the daemon's error", err)
	}
}

// TestDaemonEndingWithoutErrorIsAFailure: a daemon that returns nil by
// itself (nobody asked it to stop) must still make the service exit
// non-zero, or the manager would not restart it.
func TestDaemonEndingWithoutErrorIsAFailure(t *testing.T) {
	m := &fakeManager{stop: make(chan struct{})}
	m.p = newProgram(func(context.Context, *slog.Logger) error { return nil })
	if err := serveWithin(t, m); !errors.Is(err, ErrDaemonExited) {
		t.Errorf("serve() = %v; want ErrDaemonExited", err)
	}
}

// TestManagerStopIsClean: when the manager stops the service, the daemon's
// context ends, it returns, and serve returns nil (exit 0: systemd does not
// restart a service it stopped).
func TestManagerStopIsClean(t *testing.T) {
	running := make(chan struct{})
	m := &fakeManager{stop: make(chan struct{})}
	m.p = newProgram(func(ctx context.Context, _ *slog.Logger) error {
		close(running)
		<-ctx.Done()
		return nil
	})
	res := make(chan error, 1)
	go func() { res <- serve(m, m.p) }()
	<-running
	close(m.stop)
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("serve() after the manager's stop = %v; want nil", err)
		}
	case <-time.After(time.Minute): // only a hang gets here
		t.Fatal("serve did not return after the manager's stop")
	}
}
