package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kardianos/service"

	"github.com/carrel-lib/carrel/installer"
)

// Name is the service's name on every platform.
const Name = "carrel"

// StopTimeout bounds how long Stop waits for the daemon's clean shutdown.
// systemd's TimeoutStopSec and the Windows service manager allow 30 s.
var StopTimeout = 25 * time.Second

// RunFunc runs the daemon until ctx is cancelled.
type RunFunc func(ctx context.Context, log *slog.Logger) error

// program adapts a RunFunc to service.Interface.
type program struct {
	run    RunFunc
	log    *slog.Logger
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
	// ended receives the daemon's error when it ended by itself, not
	// because the service manager stopped it.
	ended chan error
}

// ErrDaemonExited is what Run returns when the daemon ended by itself
// without an error: the service must still exit non-zero, or the manager
// would not restart it.
var ErrDaemonExited = errors.New("the daemon ended by itself")

// Start starts the daemon and returns at once, as the service manager
// requires.
func (p *program) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p.mu.Lock()
	p.cancel, p.done = cancel, done
	ended := p.ended
	p.mu.Unlock()
	go func() {
		err := p.run(ctx, p.log)
		if err != nil {
			p.log.Error("carrel stopped with an error", "err", err)
		}
		done <- err
		if ctx.Err() == nil && ended != nil {
			// The daemon ended by itself (it could not start, or failed):
			// Run hands this to main, whose non-zero exit makes systemd's
			// Restart=on-failure and the Windows recovery actions apply.
			if err == nil {
				err = ErrDaemonExited
			}
			ended <- err
		}
	}()
	return nil
}

// Stop cancels the daemon and waits for it to shut down cleanly.
func (p *program) Stop(s service.Service) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-time.After(StopTimeout):
		return fmt.Errorf("carrel did not stop within %s", StopTimeout)
	}
}

// Config describes the installed service.
func Config(exe, configPath string) *service.Config {
	return &service.Config{
		Name:        Name,
		DisplayName: "carrel",
		Description: "carrel: booking-time register for public library PCs (traffic only under a declared misuse case)",
		Executable:  exe,
		Arguments:   runArgs(configPath),
		Option: service.KeyValue{
			"SystemdScript":          installer.SystemdUnit,
			"Restart":                "on-failure",
			"OnFailure":              "restart", // Windows recovery actions
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   300,
			"DelayedAutoStart":       false,
			"StartType":              "automatic",
		},
	}
}

// New returns the service for exe (the carrel binary) and its config path,
// for control (install, start, stop, status, uninstall). Run runs it.
func New(exe, configPath string, log *slog.Logger) (service.Service, error) {
	return newService(&program{}, exe, configPath, log)
}

func newService(p *program, exe, configPath string, log *slog.Logger) (service.Service, error) {
	p.log = log
	s, err := service.New(p, Config(exe, configPath))
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	if log != nil {
		p.log = Logger(s, log)
	}
	return s, nil
}

// Run runs the daemon under the service manager (systemd, the Windows
// service manager) until the manager stops it, and then returns nil. When
// the daemon ends by itself — it could not start, or failed — Run returns
// its error at once (ErrDaemonExited if it had none) without waiting for
// the manager: the caller exits non-zero, which makes systemd's
// Restart=on-failure and the Windows recovery actions apply. Run never
// exits the process itself.
func Run(exe, configPath string, run RunFunc, log *slog.Logger) error {
	p := &program{run: run, ended: make(chan error, 1)}
	s, err := newService(p, exe, configPath, log)
	if err != nil {
		return err
	}
	return serve(managerFor(s, p, log), p)
}

// manager is what serve needs of a service.Service: Run, which calls the
// program's Start, waits for the manager's stop request, and calls Stop.
type manager interface{ Run() error }

// serve runs m until the manager stops the service or the daemon ends by
// itself. In the second case m.Run is left waiting for a stop request that
// will not come; the process ends when the caller returns from main.
func serve(m manager, p *program) error {
	managed := make(chan error, 1)
	go func() { managed <- m.Run() }()
	select {
	case err := <-managed:
		if err != nil {
			return fmt.Errorf("running under the service manager: %w", err)
		}
		return nil
	case err := <-p.ended:
		return err
	}
}

// Interactive reports whether carrel runs from a terminal or a script
// rather than under the service manager.
func Interactive() bool { return service.Interactive() }

// Platform names the service manager in use ("linux-systemd", "windows-service").
func Platform() string { return service.Platform() }

// ErrNotInstalled is returned by Status when the service is not installed.
var ErrNotInstalled = service.ErrNotInstalled

// StatusText describes a service status.
func StatusText(st service.Status) string {
	switch st {
	case service.StatusRunning:
		return "running"
	case service.StatusStopped:
		return "stopped"
	default:
		return "unknown"
	}
}
