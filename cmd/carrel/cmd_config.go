package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/misuse"
	"github.com/carrel-lib/carrel/internal/svc"
)

func init() {
	register(command{name: "config", summary: "check a config file, or print a commented default one (check|init)", run: runConfig})
}

var configCommands = map[string]command{
	"check": {"check", "check a config file: every problem on a line of its own, exit 1 if any: [FILE]", runConfigCheck},
	"init":  {"init", "print (or write with --out) the commented default config", runConfigInit},
}

func runConfig(ctx context.Context, e *env, args []string) error {
	return group{name: "config", subs: configCommands}.run(ctx, e, args)
}

// runConfigCheck prints every problem, one per line with its key, and
// exits 1; or says the file is valid and exits 0.
func runConfigCheck(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("config check", e)
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
	case 1:
		*path = fs.Arg(0)
	default:
		return usagef("config check takes at most one FILE")
	}
	// Inspect judges the file as the service does, and also returns what
	// it could parse of a refused file, so that every problem is listed.
	cfg, err := config.Inspect(*path)
	if err != nil && !config.IsRefusal(err) {
		return err
	}
	var lines []string
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			lines = append(lines, p.String())
		}
	}
	var pe *config.PermissionError
	if errors.As(err, &pe) {
		for _, p := range pe.Problems {
			lines = append(lines, "(permissions) "+fixed(p))
		}
	}
	if cfg != nil {
		// A broken case does not make the file invalid for the service (the
		// case is refused, other settings apply), but it is a problem to fix.
		for _, cd := range misuse.Decide(cfg, cfg.PC.ID, timeNow()).Cases {
			for _, b := range cd.Broken {
				lines = append(lines, fmt.Sprintf("case[%s].%s (this case cannot capture)", cd.ID, b))
			}
		}
		// The folders the config names, judged as the service will.
		for _, f := range []struct {
			key string
			err error
		}{
			{"storage.data_dir", config.CheckDataDir(cfg.Storage.DataDir)},
			{"booking.api_socket", config.CheckSocketDir(cfg.Booking.APISocket)},
		} {
			switch {
			case errors.As(f.err, &pe):
				for _, p := range pe.Problems {
					lines = append(lines, f.key+": (permissions) "+fixed(p))
				}
			case f.err != nil:
				lines = append(lines, fmt.Sprintf("%s: %v", f.key, f.err))
			}
		}
	}
	if cfg != nil {
		if w := sandboxWarning(cfg.Storage.DataDir); w != "" {
			fmt.Fprintln(e.stderr, printable(w))
		}
	}
	if len(lines) > 0 {
		for _, l := range lines {
			fmt.Fprintln(e.stdout, l)
		}
		fmt.Fprintf(e.stderr, "%s: %d problem(s)\n", *path, len(lines))
		return &silentError{code: exitFailure}
	}
	fmt.Fprintf(e.stdout, "%s: valid (pc %s, %d case(s))\n", *path, cfg.PC.ID, len(cfg.Cases))
	return nil
}

// sandboxWarning warns, on a system where carrel's systemd unit is
// installed, when that unit (with its drop-ins) does not let the service
// write the data folder: the config is valid, but the service would fail
// to start with "read-only file system" and restart in a loop. It says
// what drop-in to add; "" when there is nothing to say.
func sandboxWarning(dataDir string) string {
	if runtime.GOOS != "linux" {
		return ""
	}
	sb, ok, err := svc.InstalledSandbox()
	switch {
	case err != nil:
		return fmt.Sprintf("warning: cannot tell whether the systemd unit lets carrel write storage.data_dir: %v", err)
	case !ok || sb.Allows(dataDir):
		return ""
	}
	_, serr := os.Stat(dataDir)
	return fmt.Sprintf("warning: storage.data_dir: the installed unit %s does not let the service write %q: "+
		"the service would fail to start and restart in a loop\nhint: %s", sb.Unit, dataDir, svc.DataDirHint(dataDir, serr == nil))
}

// fixed is a permission problem with its fix, when it has one.
func fixed(p config.PathProblem) string {
	if p.Fix == "" {
		return p.String()
	}
	return p.String() + "; fix: " + p.Fix
}

// runConfigInit prints the commented default config, or writes it to a new
// file (--out), as installers do with the PC id and recipient they were given.
func runConfigInit(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("config init", e)
	dataDir := fs.String("data-dir", "", "put the data folder and the API socket under `DIR` (for running without root)")
	pcID := fs.String("pc-id", "", "set pc.id to `ID` (empty: the host name)")
	var recipients listFlag
	fs.Var(&recipients, "recipient", "add the head librarian's age public `KEY` (age1…) to capture.recipients; repeatable; empty is ignored")
	out := fs.String("out", "", "write to `FILE` instead of standard output; an existing FILE is left as it is")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("config init takes no arguments; redirect its output or use --out FILE")
	}
	if *dataDir != "" {
		abs, err := absPath(*dataDir)
		if err != nil {
			return err
		}
		*dataDir = abs
	}
	doc := config.ExampleWith(config.ExampleOptions{DataDir: *dataDir, PCID: *pcID, Recipients: recipients})
	// An installer property with a typo must fail the install, not leave a
	// config the service will refuse. (An unknown host name is not checked
	// here: it is this PC's, and the service reports it.)
	if _, err := config.Parse(doc); err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				if p.Key == "pc.id" && *pcID == "" {
					continue
				}
				fmt.Fprintln(e.stderr, p.String())
				return &silentError{code: exitFailure}
			}
		} else {
			return err
		}
	}
	if *out == "" {
		_, err := e.stdout.Write(doc)
		return err
	}
	if _, err := os.Stat(*out); err == nil {
		fmt.Fprintf(e.stdout, "%s exists; left unchanged\n", *out)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("creating config folder: %w", err)
	}
	if err := secureDir(filepath.Dir(*out), false); err != nil {
		return err
	}
	if err := writeNewFile(*out, doc); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", *out)
	return nil
}

// listFlag collects a repeatable flag; empty values are dropped so that an
// installer can pass an unset property as "".
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	if s != "" {
		*l = append(*l, s)
	}
	return nil
}
