package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/keyfile"
	"github.com/carrel-lib/carrel/internal/svc"
)

func init() {
	register(command{name: "service", summary: "install, uninstall, start, stop, restart the system service, or show its status", run: runService})
}

// serviceActions; "group" creates the booking-client group the config
// names and fails when it does not exist afterwards (the MSI runs it).
var serviceActions = []string{"install", "uninstall", "start", "stop", "restart", "status", "group"}

func runService(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("service needs an action: %v", serviceActions)
	}
	action := args[0]
	fs := newFlagSet("service "+action, e)
	path := configFlag(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("service %s takes no arguments", action)
	}
	abs, err := absPath(*path)
	if err != nil {
		return err
	}
	if action == "group" {
		cfg, err := config.Load(abs)
		if err != nil {
			return err
		}
		return ensureClientGroup(e, cfg.Booking.ClientGroup)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	s, err := svc.New(exe, abs, nil)
	if err != nil {
		return err
	}
	switch action {
	case "install":
		if err := prepareInstall(e, abs); err != nil {
			return err
		}
		if err := svc.InstallRelay(exe, abs); err != nil {
			return fmt.Errorf("installing the witness relay: %w", err)
		}
		if err := s.Install(); err != nil {
			svc.UninstallRelay()
			return fmt.Errorf("installing the %s service: %w", svc.Platform(), err)
		}
		fmt.Fprintf(e.stdout, "installed the carrel service (%s) running %s with config %s\nstart it with: carrel service start\n", svc.Platform(), exe, abs)
	case "uninstall":
		if err := s.Uninstall(); err != nil {
			return fmt.Errorf("uninstalling the service: %w", err)
		}
		if err := svc.UninstallRelay(); err != nil {
			return fmt.Errorf("uninstalling the witness relay: %w", err)
		}
		fmt.Fprintln(e.stdout, "uninstalled the carrel service; its config and data folder are kept")
	case "start", "stop", "restart":
		do := map[string]func() error{"start": s.Start, "stop": s.Stop, "restart": s.Restart}[action]
		if err := do(); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		fmt.Fprintf(e.stdout, "carrel service: %s done\n", action)
	case "status":
		st, err := s.Status()
		if errors.Is(err, svc.ErrNotInstalled) {
			fmt.Fprintln(e.stdout, "carrel service: not installed")
			return &silentError{code: exitNotRunning}
		}
		if err != nil {
			return fmt.Errorf("asking the service manager: %w", err)
		}
		fmt.Fprintf(e.stdout, "carrel service: %s\n", svc.StatusText(st))
		if svc.StatusText(st) != "running" {
			return &silentError{code: exitNotRunning}
		}
	default:
		return usagef("unknown service action %q: want one of %v", action, serviceActions)
	}
	return nil
}

// prepareInstall writes the default config and data folder when they do not
// exist, with permissions carrel accepts, and checks existing ones.
func prepareInstall(e *env, configPath string) error {
	if err := writeDefaultConfig(e, configPath); err != nil {
		return err
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return &hintError{err: err, hint: "fix the config (carrel config check) and run install again"}
	}
	if err := os.MkdirAll(cfg.Storage.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	if err := secureDir(cfg.Storage.DataDir, true); err != nil {
		return err
	}
	if err := installClientGroup(e, cfg.Booking.ClientGroup); err != nil {
		return err
	}
	if err := config.CheckDataDir(cfg.Storage.DataDir); err != nil {
		return fmt.Errorf("storage.data_dir: %w", err)
	}
	if err := config.CheckSocketDir(cfg.Booking.APISocket); err != nil {
		return fmt.Errorf("booking.api_socket: %w", err)
	}
	return nil
}

// writeDefaultConfig writes the commented default config at path unless a
// file is already there.
func writeDefaultConfig(e *env, path string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating config folder: %w", err)
	}
	if err := secureDir(filepath.Dir(path), false); err != nil {
		return err
	}
	if err := writeNewFile(path, config.Example("")); err != nil {
		return fmt.Errorf("writing default config: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote the default config to %s; edit [library] and [capture].recipients\n", path)
	return nil
}

// writeNewFile creates path (never overwriting) readable only by its
// owner, whole or not at all: an install interrupted while writing the
// config leaves no file, never an empty one that the next install would
// keep and the service refuse.
func writeNewFile(path string, b []byte) error {
	return keyfile.Create(path, b, "")
}
