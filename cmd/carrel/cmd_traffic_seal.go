package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

func init() {
	trafficCommands["list"] = command{name: "list", summary: "list sealed traffic segments: case, time range, size, hash, holds (never content)", run: runTrafficList}
	trafficCommands["release"] = command{name: "release", summary: "lift the legal hold of a court order (--order REF)", run: runTrafficRelease}
}

func runTrafficList(ctx context.Context, e *env, args []string) error {
	flags := newFlagSet("traffic list", e)
	path := configFlag(flags)
	asJSON := flags.Bool("json", false, "print a JSON array instead of a table")
	caseID := flags.String("case", "", "only segments of case `ID`")
	var from, to timeFlag
	flags.Var(&from, "from", "only segments with records from `TIME` on")
	flags.Var(&to, "to", "… up to `TIME`")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usagef("traffic list takes no arguments")
	}
	_, data, err := loadDataDir(*path)
	if err != nil && !errors.Is(err, config.ErrNoDataDir) {
		return err
	}
	var store *seal.Store
	if err == nil {
		defer data.Close()
		// Inspection only: no audit log needed, nothing is changed or created.
		store, err = seal.Open(ctx, data.Path(), seal.Options{})
		err = data.Named(err)
	} else {
		err = seal.ErrNoStore
	}
	if errors.Is(err, seal.ErrNoStore) {
		if *asJSON {
			fmt.Fprintln(e.stdout, "[]")
		} else {
			fmt.Fprintln(e.stdout, "no sealed traffic: no capture has run")
		}
		return nil
	}
	if err != nil {
		return storeError(err)
	}
	defer store.Close()
	segs, err := store.Segments(ctx, seal.Filter{Case: *caseID, From: from.t, To: to.t})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeSegmentsJSON(e.stdout, segs)
	}
	return writeSegmentsTable(e.stdout, segs)
}

// segmentJSON is the --json form of a segment. Scripts read it: only add
// fields.
type segmentJSON struct {
	Name     string     `json:"name"`
	Case     string     `json:"case"`
	Format   string     `json:"format"`
	State    string     `json:"state"`
	Opened   time.Time  `json:"opened"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	Records  int64      `json:"records"`
	Size     int64      `json:"size"`
	SHA256   string     `json:"sha256,omitempty"`
	SealedAt *time.Time `json:"sealed_at,omitempty"`
	EndedAt  *time.Time `json:"ended_at,omitempty"`
	Holds    []string   `json:"holds"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func writeSegmentsJSON(w io.Writer, segs []seal.Segment) error {
	out := make([]segmentJSON, 0, len(segs))
	for _, s := range segs {
		out = append(out, segmentJSON{
			Name: s.Name, Case: s.Case, Format: string(s.Format), State: string(s.State), Opened: s.Opened,
			From: optTime(s.From), To: optTime(s.To), Records: s.Records, Size: s.Size, SHA256: s.SHA256,
			SealedAt: optTime(s.SealedAt), EndedAt: optTime(s.EndedAt), Holds: append([]string{}, s.Holds...),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeSegmentsTable(w io.Writer, segs []seal.Segment) error {
	if len(segs) == 0 {
		_, err := fmt.Fprintln(w, "no segments match")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tFROM\tTO\tRECORDS\tSIZE\tSTATE\tSHA256\tHOLDS\tSEGMENT")
	for _, s := range segs {
		sum := "-"
		if s.SHA256 != "" {
			sum = s.SHA256[:16] + "…" // --json has it whole
		}
		holds := "-"
		if len(s.Holds) > 0 {
			holds = strings.Join(s.Holds, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Case, fmtTime(&s.From), fmtTime(&s.To),
			s.Records, fmtBytes(s.Size), s.State, sum, holds, s.Name)
	}
	return tw.Flush()
}

func runTrafficRelease(ctx context.Context, e *env, args []string) error {
	flags := newFlagSet("traffic release", e)
	path := configFlag(flags)
	order := flags.String("order", "", "the court order `REF` whose legal hold ends (required)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if strings.TrimSpace(*order) == "" || flags.NArg() > 0 {
		return usagef("traffic release needs --order REF and no other arguments")
	}
	cfg, data, err := loadDataDir(*path)
	if errors.Is(err, config.ErrNoDataDir) {
		return seal.Exists(cfg.Storage.DataDir) // nothing was ever sealed: ErrNoStore
	}
	if err != nil {
		return err
	}
	defer data.Close()
	dataDir := data.Path()
	// ErrNoStore: nothing was ever sealed, so nothing is held.
	if err := seal.Exists(dataDir); err != nil {
		return data.Named(err)
	}
	// The same log the service writes; several processes may append to it.
	log, err := audit.OpenIn(dataDir, cfg.LogOrigin(), nil)
	if err != nil {
		return storeError(data.Named(err))
	}
	defer log.Close()
	store, err := seal.Open(ctx, dataDir, seal.Options{Recorder: log, Actor: cliActor()})
	if err != nil {
		return storeError(data.Named(err))
	}
	defer store.Close()
	n, err := store.Release(ctx, *order)
	if errors.Is(err, seal.ErrNoHold) {
		return &hintError{err: err, hint: "`carrel traffic list` shows the orders holding segments"}
	}
	if err != nil {
		return data.Named(err)
	}
	fmt.Fprintf(e.stdout, "released the legal hold on %d segment(s); the next retention run deletes those whose time is up\n", n)
	return nil
}

// storeError adds the usual fix to a permission problem: the traffic store
// and the audit log belong to the service's account.
func storeError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return &hintError{err: err, hint: "run as root (Administrator on Windows): the traffic store is private to the service"}
	}
	return err
}

// cliActor names who ran the command in audit entries: the account, never
// a person's name.
func cliActor() string {
	if uid := os.Getuid(); uid >= 0 {
		return "uid:" + strconv.Itoa(uid)
	}
	return "cli"
}
