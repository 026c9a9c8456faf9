package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/config"
)

func init() {
	register(command{name: "status", summary: "show what the service is recording and why", run: runStatus})
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("status", e)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	st, err := apiClient(cfg).Status(ctx)
	if err != nil {
		return apiError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(e.stdout, st)
	return nil
}

func printStatus(w io.Writer, st api.Status) {
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%-16s %s\n", k+":", fmt.Sprintf(format, a...)) }
	row("mode", "%s", st.Mode)
	row("why", "%s", st.ModeReason)
	if c := st.Capture; c != nil {
		if c.On {
			row("capture", "on, case %s, %s mode on %s, until %s", c.Case, c.Mode, c.Interface, fmtTime(c.Until))
			row("captured", "%d packets, %d dropped, %d sealed segments, %s", c.Packets, c.Drops, c.Segments, fmtBytes(c.Bytes))
		} else {
			row("capture", "off (see why)")
		}
		for _, cs := range c.Cases {
			line := cs.State
			if cs.Reason != "" {
				line += ": " + cs.Reason
			}
			row("case "+cs.ID, "%s", line)
		}
		if c.NextCheck != nil {
			row("next change", "%s", fmtTime(c.NextCheck))
		}
	}
	row("pc", "%s", st.PC)
	row("data folder", "%s", st.DataDir)
	row("config", "%s (sha256 %s)", st.Config, short(st.ConfigSHA256))
	if st.ConfigRejected != "" {
		row("config refused", "the file on disk is invalid; the config above stays in force:")
		for _, l := range strings.Split(st.ConfigRejected, "\n") {
			fmt.Fprintf(w, "%-16s   %s\n", "", l)
		}
	}
	oldest := "none"
	if st.Bookings.Oldest != nil {
		oldest = fmtTime(st.Bookings.Oldest)
	}
	row("bookings", "%d stored (%d open), oldest %s", st.Bookings.Count, st.Bookings.Open, oldest)
	if f := st.DiskFull; f != nil {
		row("disk full", "%d booking changes refused since %s: the data folder's disk has no space left; free space, then bookings work again", f.Refused, fmtTime(&f.Since))
	}
	row("retention", "%s, next purge %s", st.Retention, fmtTime(&st.NextPurge))
	row("audit log", "%d entries, %d covered by the latest signed checkpoint", st.Audit.Entries, st.Audit.Checkpointed)
	row("service", "running since %s, version %s", fmtTime(&st.Started), st.Version)
	for _, w2 := range st.Warnings {
		row("warning", "%s", w2)
	}
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// apiClient returns a client for the API address of cfg on this platform.
func apiClient(cfg *config.Config) *api.Client {
	return api.NewClient(cfg.APIAddr())
}

// apiError turns client errors into the CLI's errors: not running → exit 3,
// a refusal → a hint about the group.
func apiError(err error) error {
	var se *api.StatusError
	switch {
	case errors.Is(err, api.ErrNotRunning):
		return &notRunningError{err}
	case errors.Is(err, fs.ErrPermission):
		return &hintError{err: err, hint: "only root/Administrators, the service and members of the booking-client group (booking.client_group) may use the API"}
	case errors.As(err, &se) && se.Code == 403:
		return &hintError{err: err, hint: "only root/Administrators and members of the booking-client group (booking.client_group) may use the API"}
	default:
		return err
	}
}
