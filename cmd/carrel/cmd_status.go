package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	target := addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	client, apiErr, err := target.client()
	if err != nil {
		return err
	}
	st, err := client.Status(ctx)
	if err != nil {
		return apiErr(err)
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
	if st.Audit.Origin != "" {
		row("audit origin", "%s", safeText(st.Audit.Origin))
	}
	printWitnesses(w, row, st.Audit)
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

// apiTarget is where the booking and status commands reach the service.
// They need nothing from the config but the API address, and the config
// is root-only (it names staff), while the booking client's account must be
// able to book. So: --api ADDR when given; else the address in the config;
// else, when the default config cannot be read or does not exist, the
// platform's default socket or pipe. A config named with --config must be
// readable.
type apiTarget struct {
	fs         *flag.FlagSet
	configPath string
	addr       string
}

func addAPIFlags(fs *flag.FlagSet) *apiTarget {
	t := &apiTarget{fs: fs}
	fs.StringVar(&t.configPath, "config", defaultConfigPath(), "config `FILE` (read for the API address only)")
	fs.StringVar(&t.addr, "api", "", "the service's API socket (Linux) or named pipe (Windows) `ADDR`, instead of the one in the config; "+
		"when the default config cannot be read, "+defaultAPIAddr())
	return t
}

// defaultAPIAddr is the API address of a config that does not set one.
func defaultAPIAddr() string {
	return (&config.Config{Booking: config.Booking{APISocket: config.DefaultSocket, APIPipe: config.DefaultPipe}}).APIAddr()
}

// client returns a client for the service, and the function that turns its
// errors into the CLI's.
func (t *apiTarget) client() (*api.Client, func(error) error, error) {
	if t.addr != "" {
		return api.NewClient(t.addr), apiError, nil
	}
	cfg, err := config.Load(t.configPath)
	if err == nil {
		return api.NewClient(cfg.APIAddr()), apiError, nil
	}
	unreadable := errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, config.ErrNotFound)
	if !unreadable || flagGiven(t.fs, "config") {
		if errors.Is(err, fs.ErrPermission) {
			return nil, nil, &hintError{err: err, hint: "this command needs only the service's address: pass --api ADDR, or leave out --config to use the default " + defaultAPIAddr()}
		}
		return nil, nil, err
	}
	addr := defaultAPIAddr()
	why := "cannot be read"
	if !errors.Is(err, fs.ErrPermission) {
		why = "does not exist"
	}
	note := fmt.Sprintf("the config %s %s here, so carrel used the default API address %s; if the service uses another, pass --api ADDR", t.configPath, why, addr)
	return api.NewClient(addr), func(err error) error {
		err = apiError(err)
		var h interface{ Hint() string }
		if errors.As(err, &h) && h.Hint() != "" {
			note += "\nhint: " + h.Hint()
		}
		return &hintError{err: err, hint: note}
	}, nil
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
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

// printWitnesses prints one row per witness: what it last cosigned, or
// its last error, and a refusal that waits for an acknowledgement in
// capitals. Names and URLs come from the validated config; what a witness
// said is quoted by package witness before it is stored.
func printWitnesses(w io.Writer, row func(k, format string, a ...any), a api.AuditStatus) {
	if a.WitnessQuorum > 0 {
		n := len(a.Witnesses)
		if a.Witnessed > 0 {
			row("witnessed", "%d entries, cosigned by %d of %d witnesses", a.Witnessed, a.WitnessQuorum, n)
		} else {
			row("witnessed", "not yet: no checkpoint is cosigned by %d of %d witnesses", a.WitnessQuorum, n)
		}
	}
	for _, ws := range a.Witnesses {
		key := "witness " + ws.Name
		switch {
		case ws.Error != "":
			row(key, "failing since %s: %s", fmtTime(ws.ErrorAt), safeText(ws.Error))
			if ws.Cosigned > 0 {
				fmt.Fprintf(w, "%-16s   last cosigned size %d at %s\n", "", ws.Cosigned, fmtTime(ws.CosignedAt))
			}
		case ws.Cosigned > 0:
			row(key, "cosigned size %d at %s", ws.Cosigned, fmtTime(ws.CosignedAt))
		case ws.URL == "":
			row(key, "no longer in the config")
		default:
			row(key, "nothing cosigned yet")
		}
		if r := ws.Refusal; r != nil {
			if r.AcknowledgedAt == nil {
				fmt.Fprintf(w, "%-16s   REFUSED THE AUDIT LOG at %s (%s, entry %d): %s\n", "", fmtTime(&r.At), r.Why, r.Entry, safeText(r.Detail))
				fmt.Fprintf(w, "%-16s   the log is not an extension of what this witness cosigned (rolled back, rewritten, or wiped and restarted);\n", "")
				fmt.Fprintf(w, "%-16s   see the README (Witnesses), then: carrel audit witness ack %s\n", "", ws.Name)
			} else if ws.Error != "" {
				fmt.Fprintf(w, "%-16s   refusal of %s (%s) acknowledged by %s at %s\n", "", fmtTime(&r.At), r.Why, r.AcknowledgedBy, fmtTime(r.AcknowledgedAt))
			}
		}
	}
}
