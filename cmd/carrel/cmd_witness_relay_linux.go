package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/witness"
)

func init() {
	register(command{name: "witness-relay", summary: "the witness relay carrel-witness.service runs (allow | run); not for people", run: runWitnessRelay})
}

var witnessRelayCommands = map[string]command{
	"allow": {"allow", "resolve the config's witnesses and limit the relay unit to their addresses (its ExecStartPre, as root)", runWitnessRelayAllow},
	"run":   {"run", "relay the service's connections to its witnesses, and to nothing else", runWitnessRelayRun},
}

func runWitnessRelay(ctx context.Context, e *env, args []string) error {
	return group{name: "witness-relay", subs: witnessRelayCommands,
		note: "carrel-witness.service runs these; see the README, Witnesses."}.run(ctx, e, args)
}

// exitRelayRestart makes systemd start the relay again (Restart=always)
// with a new list of destinations.
const exitRelayRestart = 75

const (
	defaultAllowedFile = "/run/carrel-witness/allowed.json"
	relayUnit          = "carrel-witness.service"
)

func runWitnessRelayAllow(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("witness-relay allow", e)
	path := configFlag(fs)
	out := fs.String("out", defaultAllowedFile, "write the destinations to `FILE`")
	unit := fs.String("unit", relayUnit, "limit this systemd `UNIT`'s IP traffic to the witnesses' addresses (systemctl set-property --runtime IPAddressAllow=)")
	noSystemctl := fs.Bool("no-systemctl", false, "only write the destinations")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("witness-relay allow takes no arguments")
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	// A config that cannot be used leaves the relay with no destination:
	// it still starts, and restarts when a witness it lacks is asked for.
	var urls []string
	if cfg, err := config.Load(*path); err != nil {
		log.Warn("the config cannot be used; the relay gets no destination", "err", err)
	} else {
		for _, w := range cfg.Audit.Witnesses {
			urls = append(urls, w.URL)
		}
	}
	var allowed []witness.Allowed
	for _, u := range urls {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		as, err := witness.Resolve(rctx, []string{u}, nil)
		cancel()
		if err != nil {
			log.Warn("a witness's address cannot be resolved; the relay cannot reach it until it starts again", "url", u, "err", err)
			continue
		}
		allowed = append(allowed, as...)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		return err
	}
	if err := witness.WriteAllowed(*out, allowed); err != nil {
		return err
	}
	prefixes := witness.Prefixes(allowed)
	if !*noSystemctl {
		// IPAddressAllow= first empties the list: the unit allows exactly
		// these addresses, and with none it reaches nothing (IPAddressDeny=any).
		args := []string{"set-property", "--runtime", *unit, "IPAddressAllow="}
		if len(prefixes) > 0 {
			args = append(args, "IPAddressAllow="+strings.Join(prefixes, " "))
		}
		if out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	log.Info("witness relay destinations", "witnesses", len(allowed), "addresses", strings.Join(prefixes, " "))
	if !unifiedCgroups() {
		log.Warn("this system has no unified cgroup hierarchy, so systemd cannot enforce the relay unit's IPAddressDeny=: " +
			"the relay's own check of each destination is then the only limit on where it connects")
	}
	return nil
}

// unifiedCgroups reports whether /sys/fs/cgroup is a cgroup2 file system,
// which systemd's IP firewall (IPAddressDeny=) needs.
func unifiedCgroups() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func runWitnessRelayRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("witness-relay run", e)
	path := configFlag(fs)
	allowedFile := fs.String("allowed", defaultAllowedFile, "the destinations `FILE` witness-relay allow wrote")
	socket := fs.String("socket", witness.DefaultRelaySocket, "listen on this Unix socket `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("witness-relay run takes no arguments")
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	allowed, err := witness.ReadAllowed(*allowedFile)
	if err != nil {
		return err
	}
	l, err := witness.ListenRelay(*socket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	restart := false
	r := &witness.Relay{Allowed: allowed, Log: log,
		Configured: func() ([]string, error) {
			cfg, err := config.Load(*path)
			if err != nil {
				return nil, err
			}
			var urls []string
			for _, w := range cfg.Audit.Witnesses {
				urls = append(urls, w.URL)
			}
			return urls, nil
		},
		Restart: func() { restart = true; cancel() },
	}
	log.Info("witness relay listening", "socket", *socket, "destinations", len(allowed))
	if err := r.Serve(ctx, l); err != nil {
		return err
	}
	if restart {
		fmt.Fprintln(e.stderr, "carrel witness-relay: the witness list changed; exiting so that systemd starts the relay again")
		return &silentError{code: exitRelayRestart}
	}
	return nil
}
