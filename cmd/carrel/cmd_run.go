package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/carrel-lib/carrel/internal/daemon"
	"github.com/carrel-lib/carrel/internal/svc"
	"github.com/carrel-lib/carrel/internal/witness"
)

func init() {
	register(command{name: "run", summary: "run the service in the foreground (what the installed service runs)", run: runRun})
}

// bootIDSource replaces the daemon's reading of the PC's boot id; nil in
// carrel itself. The end-to-end tests set it to stage a restart of the PC.
var bootIDSource func() (string, error)

// witnessBackoff replaces the wait between pushes to a witness that failed;
// nil in carrel itself. The end-to-end tests shorten it.
var witnessBackoff func(n int) time.Duration

type runOptions struct {
	configPath string
	logLevel   string
	service    bool // started by the service manager: say so rather than detect it
}

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("run", e)
	var o runOptions
	fs.StringVar(&o.configPath, "config", defaultConfigPath(), "config `FILE`")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.BoolVar(&o.service, "service", false, "run as the service the service manager started (the installed Windows service's command line says so)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run takes no arguments")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	abs, err := filepath.Abs(o.configPath)
	if err != nil {
		return err
	}
	opts := daemon.Options{ConfigPath: abs, Version: version, BootID: bootIDSource, WitnessBackoff: witnessBackoff}
	// The hardened unit gives the service no IP socket: it reaches the
	// witnesses through carrel-witness.service's relay.
	if sock := os.Getenv(witness.RelayEnv); sock != "" {
		opts.WitnessDial = witness.DialRelay(sock)
	}
	run := func(ctx context.Context, log *slog.Logger) error {
		o := opts
		o.Log = log
		return daemon.Run(ctx, o)
	}
	if !o.service && svc.Interactive() {
		return run(ctx, log)
	}
	// Under systemd or the Windows service manager: speak the manager's
	// protocol and take its stop requests. The installed Windows service
	// passes --service, because detecting the service manager from the
	// session fails under Wine (and may wherever services do not run in
	// session 0).
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// An error here (the daemon could not start, or failed) goes to main,
	// whose non-zero exit lets the manager restart the service.
	return svc.Run(exe, abs, run, log)
}
