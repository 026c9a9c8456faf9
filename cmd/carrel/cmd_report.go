package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
	compliance "github.com/carrel-lib/carrel/internal/report"
)

func init() {
	register(command{name: "report", summary: "compliance reports from this PC: review (yearly), processing (GDPR Art. 30), breach (Art. 33 facts)", run: runReport})
}

// reportOptions are the flags of `carrel report KIND`.
type reportOptions struct {
	configPath string
	kind       string // review, processing or breach
	format     string
	lang       string
	out        string
	from, to   timeFlag // review
	since      timeFlag // breach
	trusted    string   // review and breach: a checkpoint kept off the PC
	verifiers  stringList
	witness    *witnessKeyFlags // review and breach; nil for processing
}

// defaultBreachWindow is how far back `report breach` looks without --since.
const defaultBreachWindow = 30 * 24 * time.Hour

func runReport(ctx context.Context, e *env, args []string) error {
	kinds := []string{"review", "processing", "breach"}
	if len(args) == 0 || !slices.Contains(kinds, args[0]) {
		return usagef("report needs one of: %s (see carrel report KIND --help)", strings.Join(kinds, ", "))
	}
	o := reportOptions{kind: args[0]}
	fs := newFlagSet("report "+o.kind, e)
	fs.StringVar(&o.configPath, "config", defaultConfigPath(), "config `FILE`")
	fs.StringVar(&o.format, "format", "text", "format: text, html (a printable A4 page) or json")
	fs.StringVar(&o.lang, "lang", "da", "language: da or en")
	fs.StringVar(&o.out, "out", "", "write the report to a new `FILE` and record its SHA-256 in the audit log (default: print it)")
	switch o.kind {
	case "review":
		fs.Var(&o.from, "from", "start of the period, `TIME` (default: 12 months before --to)")
		fs.Var(&o.to, "to", "end of the period, `TIME`, not included (default: now)")
	case "breach":
		fs.Var(&o.since, "since", "show what the audit log recorded from `TIME` on (default: 30 days ago)")
	}
	if o.kind != "processing" {
		fs.StringVar(&o.trusted, "trusted", "", "a checkpoint `FILE` kept off the PC (carrel audit checkpoint); the audit log must extend it")
		fs.Var(&o.verifiers, "verifier", "the audit log's verifier `KEY` (carrel audit key) as kept off the PC; repeatable")
		o.witness = addWitnessKeyFlags(fs)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("report %s takes no arguments, only flags", o.kind)
	}
	if !slices.Contains(compliance.Languages, o.lang) {
		return usagef("--lang must be one of %s", strings.Join(compliance.Languages, ", "))
	}
	if !slices.Contains(compliance.Formats, o.format) {
		return usagef("--format must be one of %s", strings.Join(compliance.Formats, ", "))
	}
	return runReportKind(ctx, e, o)
}

func runReportKind(ctx context.Context, e *env, o reportOptions) error {
	now := timeNow()
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	in := compliance.Input{Config: cfg, Now: now, Version: version, Verifiers: o.verifiers}
	if err := o.witnessKeys(cfg, &in); err != nil {
		return err
	}
	if o.trusted != "" {
		b, err := readSmallFile(o.trusted, 64<<10)
		if err != nil {
			return fmt.Errorf("reading the trusted checkpoint: %w", err)
		}
		in.Trusted = b
	}
	facts, err := compliance.Gather(ctx, in)
	if err != nil {
		return err
	}
	loc := localZone(e)
	var rep compliance.Report
	switch o.kind {
	case "review":
		to := o.to.t
		if to.IsZero() {
			to = now
		}
		from := o.from.t
		if from.IsZero() {
			from = to.AddDate(-1, 0, 0)
		}
		if !from.Before(to) {
			return usagef("--from (%s) must be before --to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		rep = compliance.BuildReview(facts, compliance.Period{From: from, To: to}, o.lang, loc)
	case "processing":
		rep = compliance.BuildProcessing(facts, o.lang, loc)
	case "breach":
		since := o.since.t
		if since.IsZero() {
			since = now.Add(-defaultBreachWindow)
		}
		rep = compliance.BuildBreach(facts, since, o.lang, loc)
	}
	out, err := compliance.Render(rep, o.format)
	if err != nil {
		return err
	}
	if o.out == "" {
		_, err := e.stdout.Write(out)
		return err
	}
	return writeReport(ctx, e, cfg, o, out)
}

// witnessKeys puts the witness keys and quorum of --witness-key and
// --quorum into in. Without --witness-key the config's witnesses are
// judged, with --quorum in place of audit.witness_quorum when given.
func (o reportOptions) witnessKeys(cfg *config.Config, in *compliance.Input) error {
	if o.witness == nil {
		return nil
	}
	if len(o.witness.keys) > 0 {
		keys, quorum, _, err := o.witness.resolve(o.configPath)
		if err != nil {
			return err
		}
		in.WitnessKeys, in.WitnessQuorum = keys, quorum
		return nil
	}
	q := *o.witness.quorum
	if q < 0 {
		return usagef("--quorum must be at least 1")
	}
	if q > len(cfg.Audit.Witnesses) {
		return usagef("--quorum %d is more than the %d witnesses in the config (name others with --witness-key)", q, len(cfg.Audit.Witnesses))
	}
	in.WitnessQuorum = q
	return nil
}

// writeReport writes out to a new file and records its digest. The file is
// written whole beside its final name and only then given it, never
// replacing anything there (writeNewFile), so an existing file or a
// symlink planted at the name is never followed or replaced; if the audit
// log cannot record it, the file is removed again: a report on file must
// be one the log knows.
func writeReport(ctx context.Context, e *env, cfg *config.Config, o reportOptions, out []byte) error {
	sum := sha256.Sum256(out)
	dst, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := writeNewFile(dst, out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%q already exists: a report never replaces a file; choose a new name", dst)
		}
		return fmt.Errorf("writing the report %q: %w", dst, err)
	}
	seq, err := recordReport(ctx, cfg, o, sum[:], int64(len(out)))
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("recording the report in the audit log (the file was removed again): %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote %q (%d bytes, sha256 %x); audit entry %d records it\n", dst, len(out), sum, seq)
	return nil
}

func recordReport(ctx context.Context, cfg *config.Config, o reportOptions, sum []byte, n int64) (int64, error) {
	log, err := audit.OpenIn(cfg.Storage.DataDir, cfg.LogOrigin(), nil)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	return log.Record(ctx, audit.Event{Kind: audit.ReportWritten, Actor: cliActor(), Fields: []audit.Field{
		audit.Token("report", o.kind), audit.Token("format", o.format), audit.Token("lang", o.lang),
		audit.Hash("sha256", sum), audit.Int("bytes", n)}})
}

func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%q is larger than %d bytes: not a checkpoint", path, limit)
	}
	return b, nil
}

// localZone is the time zone reports print times in: $TZ when set, else
// the system's, named so the report can say which it is.
func localZone(e *env) *time.Location {
	name := e.getenv("TZ")
	if name == "" {
		if target, err := os.Readlink("/etc/localtime"); err == nil {
			if i := strings.Index(target, "zoneinfo/"); i >= 0 {
				name = target[i+len("zoneinfo/"):]
			}
		}
	}
	if name != "" {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.Local
}
