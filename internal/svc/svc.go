package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
}

// Start starts the daemon and returns at once, as the service manager
// requires.
func (p *program) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p.mu.Lock()
	p.cancel, p.done = cancel, done
	p.mu.Unlock()
	go func() {
		err := p.run(ctx, p.log)
		if err != nil {
			p.log.Error("carrel stopped with an error", "err", err)
		}
		done <- err
		if ctx.Err() == nil {
			// The daemon ended by itself (it could not start, or failed):
			// tell the service manager, which restarts it on failure.
			if err == nil {
				err = errors.New("daemon exited")
			}
			// Exiting non-zero makes systemd's Restart=on-failure and the
			// Windows recovery actions apply.
			os.Exit(1)
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
		Arguments:   []string{"run", "--config", configPath},
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

// New returns the service for exe (the carrel binary) and its config path.
// run is what the service runs; it may be nil for control-only use.
func New(exe, configPath string, run RunFunc, log *slog.Logger) (service.Service, error) {
	p := &program{run: run, log: log}
	s, err := service.New(p, Config(exe, configPath))
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	if log != nil {
		p.log = Logger(s, log)
	}
	return s, nil
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
