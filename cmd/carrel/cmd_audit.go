package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

func init() {
	register(command{name: "audit", summary: "list, verify and prove the tamper-evident audit log (list|verify|checkpoint|prove|key)", run: runAudit})
}

// auditCommands are the subcommands of `carrel audit`. All of them open the
// log read-only, so they work while the service runs.
var auditCommands = map[string]command{
	"list":       {"list", "print entries, oldest first: [--since T] [--until T] [--kind K,…] [--field KEY=VALUE] [--json]", runAuditList},
	"verify":     {"verify", "check every entry, checkpoint and cosignature: [--trusted FILE] [--verifier KEY] [--witness-key KEY] [--quorum N]", runAuditVerify},
	"checkpoint": {"checkpoint", "print the latest signed checkpoint, or with --cosigned the latest the witnesses cosigned; keep a copy off the PC", runAuditCheckpoint},
	"prove":      {"prove", "print the inclusion proof of entry N: --seq N [--dir DIR]", runAuditProve},
	"key":        {"key", "print the verifier key of the log's signing key", runAuditKey},
}

func runAudit(ctx context.Context, e *env, args []string) error {
	return group{name: "audit", subs: auditCommands,
		note: "Each takes --config FILE, or --db FILE to read a copy of audit.db directly."}.run(ctx, e, args)
}

// auditLogFlags are the flags every subcommand that reads the log takes.
type auditLogFlags struct {
	config *string
	db     *string
}

func addAuditLogFlags(fs *flag.FlagSet) auditLogFlags {
	return auditLogFlags{
		config: configFlag(fs),
		db:     fs.String("db", "", "read this audit.db `FILE` instead of the one in the config's data_dir (for a copy taken off the PC)"),
	}
}

// dataFile returns the path of name in the config's data folder: the
// folder judged and resolved as the service does. The command only reads,
// and every folder on that path is one only root and the service can
// change (SQLite resolves a path to its folder's name by itself anyway).
func dataFile(configPath, name string) (string, error) {
	_, d, err := loadDataDir(configPath)
	if errors.Is(err, config.ErrNoDataDir) {
		return "", &hintError{err: err, hint: "the service creates the data folder and the audit log when it first starts"}
	}
	if err != nil {
		return "", err
	}
	defer d.Close()
	return filepath.Join(d.Name(), name), nil
}

// open opens the audit log read-only.
func (f auditLogFlags) open() (*audit.Log, error) {
	path := *f.db
	if path == "" {
		var err error
		if path, err = dataFile(*f.config, audit.DBFile); err != nil {
			return nil, err
		}
	}
	l, err := audit.Open(path, audit.Options{ReadOnly: true})
	switch {
	case errors.Is(err, audit.ErrNotExist):
		return nil, &hintError{err: err, hint: "the service creates the audit log when it first starts"}
	case errors.Is(err, audit.ErrNeedsUpgrade):
		return nil, &hintError{err: err, hint: "start the service once with this carrel; it upgrades the log"}
	case errors.Is(err, fs.ErrPermission):
		return nil, &hintError{err: err, hint: "run as root (Administrator on Windows): the audit log is private to the service"}
	}
	return l, err
}

func runAuditList(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("audit list", e)
	lf := addAuditLogFlags(fs)
	since := fs.String("since", "", "entries at or after `T`: a time (2026-03-01, \"2026-03-01 14:00\", RFC 3339) or an age (36h, 7d)")
	until := fs.String("until", "", "entries before `T`, as for --since")
	kinds := fs.String("kind", "", "only entries of these `KINDS`, comma-separated (e.g. config.rejected,capture.start)")
	var fields keyValues
	fs.Var(&fields, "field", "only entries with field `KEY=VALUE` (repeatable), e.g. case=2026-03")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("audit list takes no arguments")
	}
	q := audit.Query{Fields: fields}
	var err error
	if q.Since, err = parseSince(*since); err != nil {
		return usagef("--since: %v", err)
	}
	if q.Until, err = parseSince(*until); err != nil {
		return usagef("--until: %v", err)
	}
	if q.Kinds, err = parseKinds(*kinds); err != nil {
		return usagef("--kind: %v", err)
	}
	l, err := lf.open()
	if err != nil {
		return err
	}
	defer l.Close()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		return l.Each(ctx, q, func(ent audit.Entry) error { return enc.Encode(ent) })
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tACTOR\tFIELDS")
	err = l.Each(ctx, q, func(ent audit.Entry) error {
		var parts []string
		for _, f := range ent.Fields {
			parts = append(parts, f.Key+"="+displayValue(f.Value))
		}
		_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", ent.Seq, ent.Time.Format(time.RFC3339Nano),
			ent.Kind, displayValue(ent.Actor), strings.Join(parts, " "))
		return err
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// displayValue quotes a value that has spaces or characters a terminal
// would act on, so one entry stays one line.
func displayValue(s string) string {
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f || !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// parseSince reads a time as the other commands do, or an age such as 7d.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := config.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return parseTime(s)
}

func parseKinds(s string) ([]audit.Kind, error) {
	if s == "" {
		return nil, nil
	}
	known := audit.Kinds()
	var out []audit.Kind
	for _, k := range strings.Split(s, ",") {
		k := audit.Kind(strings.TrimSpace(k))
		if !slices.Contains(known, k) {
			names := make([]string, len(known))
			for i, k := range known {
				names[i] = string(k)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("unknown kind %q; kinds are %s", k, strings.Join(names, ", "))
		}
		out = append(out, k)
	}
	return out, nil
}

// keyValues is a repeatable KEY=VALUE flag.
type keyValues map[string]string

func (kv *keyValues) String() string { return fmt.Sprint(map[string]string(*kv)) }

func (kv *keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if *kv == nil {
		*kv = keyValues{}
	}
	(*kv)[k] = v
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runAuditVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("audit verify", e)
	lf := addAuditLogFlags(fs)
	trusted := fs.String("trusted", "", "a checkpoint `FILE` kept off the PC (from `carrel audit checkpoint`, with or without --cosigned); the log must extend it. - reads standard input")
	var keys stringList
	fs.Var(&keys, "verifier", "check signatures with this verifier `KEY` (from `carrel audit key`, kept off the PC) instead of the log's own; repeatable")
	wf := addWitnessKeyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("audit verify takes no arguments")
	}
	var opts audit.VerifyOptions
	opts.Verifiers = keys
	var keysFrom string
	var err error
	if opts.WitnessKeys, opts.Quorum, keysFrom, err = wf.resolve(*lf.config); err != nil {
		return err
	}
	if *trusted != "" {
		b, err := readFileOrStdin(e, *trusted)
		if err != nil {
			return err
		}
		// A copy carried on a Windows stick may have gained CRLFs; the
		// signature still decides whether the content is genuine.
		opts.Trusted = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	}
	l, err := lf.open()
	if err != nil {
		return err
	}
	defer l.Close()
	// The live log may have just grown: the service signs a checkpoint
	// within seconds of a new entry. A copy (--db) is judged as it is.
	rep, err := verifyLive(ctx, l, opts, *lf.db == "", e.stderr)
	switch {
	case errors.Is(err, audit.ErrUnsigned):
		return &hintError{err: fmt.Errorf("audit log does not verify: %w", err),
			hint: "entries no signed checkpoint covers can be changed, or entries after them cut, without the PC's key. " +
				"A running service signs within seconds of a new entry, and after an unclean stop at its next start: if that explains it, run verify again. " +
				"Only a checkpoint kept off the PC (--trusted FILE) or a witness can prove the log's end"}
	case errors.Is(err, audit.ErrTampered):
		return &hintError{err: fmt.Errorf("audit log does not verify: %w", err),
			hint: "the log was changed outside carrel: keep audit.db and this output as evidence, and compare with a checkpoint kept off the PC"}
	case err != nil:
		return err
	}
	fmt.Fprintln(e.stdout, rep)
	fmt.Fprintln(e.stdout, rep.Limits())
	if len(opts.WitnessKeys) > 0 {
		fmt.Fprintf(e.stdout, "cosignatures checked with %d witness keys %s", len(opts.WitnessKeys), keysFrom)
		if len(wf.keys) == 0 {
			fmt.Fprint(e.stdout, " (whoever administers the PC can change those: keys from the witnesses' operators, --witness-key, prove more)")
		}
		fmt.Fprintln(e.stdout)
	}
	if len(wf.keys) > 0 && rep.Witnessed == nil {
		return &hintError{err: fmt.Errorf("audit log is not witnessed: no checkpoint carries cosignatures by %d of the given witness keys", opts.Quorum),
			hint: "a PC that never reached its witnesses has none; one whose cosignatures were deleted has none either: ask the witnesses' operators which size they hold for this log's origin"}
	}
	return nil
}

// Waiting for the running service to sign what it just recorded: it signs
// at most checkpointMaxDelay (internal/daemon) after an entry, 10 s.
const (
	signWait     = 15 * time.Second
	signWaitPoll = 250 * time.Millisecond
)

// verifyLive verifies l; when the only problem is that its newest entries
// are unsigned and were recorded moments ago (by their own time), it waits
// up to signWait for a checkpoint that covers them and verifies again.
// Waiting can only turn a failure into success through a checkpoint signed
// with the PC's key: an attacker who forges entry times buys a delay, not
// a pass.
func verifyLive(ctx context.Context, l *audit.Log, opts audit.VerifyOptions, live bool, status io.Writer) (audit.Report, error) {
	deadline := time.Now().Add(signWait)
	said := false
	for {
		rep, err := l.Verify(ctx, opts)
		if !live || !errors.Is(err, audit.ErrUnsigned) || !recentTail(ctx, l) || time.Now().After(deadline) {
			return rep, err
		}
		if !said {
			fmt.Fprintf(status, "the newest entries are not signed yet; waiting up to %s for the service to sign them\n", signWait)
			said = true
		}
		before, _ := l.Latest(ctx)
		for {
			select {
			case <-ctx.Done():
				return rep, err
			case <-time.After(signWaitPoll):
			}
			if cp, cerr := l.Latest(ctx); cerr == nil && cp.Size != before.Size || time.Now().After(deadline) {
				break
			}
		}
	}
}

// recentTail reports whether the log's newest entry was recorded less than
// signWait ago.
func recentTail(ctx context.Context, l *audit.Log) bool {
	n, err := l.Size(ctx)
	if err != nil || n == 0 {
		return false
	}
	last, err := l.Entry(ctx, n-1)
	return err == nil && time.Since(last.Time) < signWait
}

func readFileOrStdin(e *env, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(path)
}

func runAuditCheckpoint(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("audit checkpoint", e)
	lf := addAuditLogFlags(fs)
	cosigned := fs.Bool("cosigned", false, "print the latest checkpoint the witnesses cosigned, with their cosignatures")
	wf := addWitnessKeyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("audit checkpoint takes no arguments")
	}
	l, err := lf.open()
	if err != nil {
		return err
	}
	defer l.Close()
	if *cosigned {
		return printCosigned(ctx, e, l, wf, *lf.config)
	}
	cp, err := l.Latest(ctx)
	if errors.Is(err, audit.ErrNoCheckpoint) {
		return &hintError{err: err, hint: "the service signs one at start, stop, every mode change and every audit.checkpoint_interval"}
	}
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(cp.Note)
	return err
}

func runAuditProve(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("audit prove", e)
	lf := addAuditLogFlags(fs)
	seq := fs.Int64("seq", -1, "the entry's sequence number `N` (required)")
	dir := fs.String("dir", "", "also write entry-N.txt, entry-N.proof and checkpoint.txt into `DIR`, for an independent verifier")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *seq < 0 || fs.NArg() > 0 {
		return usagef("audit prove needs --seq N and no other arguments")
	}
	l, err := lf.open()
	if err != nil {
		return err
	}
	defer l.Close()
	p, err := l.Prove(ctx, *seq)
	if err != nil {
		return err
	}
	if *dir != "" {
		files := []struct {
			name string
			data []byte
		}{
			{fmt.Sprintf("entry-%d.txt", *seq), p.Entry},
			{fmt.Sprintf("entry-%d.proof", *seq), p.Inclusion.Text()},
			{"checkpoint.txt", p.Checkpoint.Note},
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(*dir, f.name), f.data, 0o644); err != nil {
				return err
			}
		}
	}
	_, err = e.stdout.Write(p.Inclusion.Text())
	return err
}

func runAuditKey(ctx context.Context, e *env, args []string) error {
	fset := newFlagSet("audit key", e)
	configPath := configFlag(fset)
	keyPath := fset.String("key", "", "read this signing key `FILE` instead of audit.key in the config's data_dir")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usagef("audit key takes no arguments")
	}
	path := *keyPath
	if path == "" {
		var err error
		if path, err = dataFile(*configPath, audit.KeyFile); err != nil {
			return err
		}
	}
	vkey, err := audit.ReadVerifierKey(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return &hintError{err: err, hint: "run as root (Administrator on Windows): the signing key is private to the service"}
	case errors.Is(err, fs.ErrNotExist):
		return &hintError{err: err, hint: "the service creates the key when it first starts"}
	case err != nil:
		return err
	}
	fmt.Fprintln(e.stdout, vkey)
	return nil
}

// printCosigned prints the latest checkpoint a quorum of witnesses
// cosigned: the log's note with their cosignature lines added.
func printCosigned(ctx context.Context, e *env, l *audit.Log, wf *witnessKeyFlags, configPath string) error {
	keys, quorum, _, err := wf.resolve(configPath)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return &hintError{err: errors.New("no witness keys: the config lists no audit.witnesses"), hint: "name them with --witness-key KEY"}
	}
	wks, err := audit.ParseWitnessKeys(keys)
	if err != nil {
		return err
	}
	cc, err := l.LatestCosigned(ctx, wks, quorum)
	if errors.Is(err, audit.ErrNotWitnessed) {
		return &hintError{err: err, hint: "carrel status shows what each witness last did"}
	}
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(cc.Note())
	return err
}
