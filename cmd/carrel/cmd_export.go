package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/export"
	"github.com/carrel-lib/carrel/internal/seal"
)

func init() {
	register(command{name: "export", summary: "export bookings and traffic for a court order as a BagIt bundle; `export verify DIR` checks one, `export clean` removes what a killed export left", run: runExport})
}

// exportStep is handed to export.Options.Step: nil, but for the tests of
// the real binary, which interrupt an export at a step they choose.
var exportStep func(ctx context.Context, step string)

// exportOptions are the flags of `carrel export`.
type exportOptions struct {
	configPath string
	order      export.Order
	from, to   timeFlag
	pcs        pcList
	identity   string
	out        string
}

// pcList is a repeatable --pc flag that also takes a comma-separated list.
type pcList []string

func (l *pcList) String() string { return strings.Join(*l, ",") }
func (l *pcList) Set(s string) error {
	for _, pc := range strings.Split(s, ",") {
		if pc = strings.TrimSpace(pc); pc != "" {
			*l = append(*l, pc)
		}
	}
	return nil
}

func runExport(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runExportVerify(ctx, e, args[1:])
	}
	if len(args) > 0 && args[0] == "clean" {
		return runExportClean(ctx, e, args[1:])
	}
	// A closed terminal (SIGHUP) stops an export like Ctrl-C and SIGTERM
	// (signalContext): it cleans up after itself rather than die with
	// decrypted traffic in a folder on the stick.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	var o exportOptions
	fs := newFlagSet("export", e)
	fs.StringVar(&o.configPath, "config", defaultConfigPath(), "config `FILE`")
	fs.StringVar(&o.order.Ref, "order", "", "the court order's reference, `REF` (required)")
	fs.StringVar(&o.order.Court, "court", "", "the court that issued the order, `NAME` (required)")
	fs.StringVar(&o.order.Requester, "requester", "", "who asked for the data, e.g. the police unit, `NAME` (required)")
	fs.StringVar(&o.order.Exporter, "exporter", "", "who makes the export (your name), `NAME` (required)")
	fs.Var(&o.from, "from", "start of the window the order asks for, `TIME` (required)")
	fs.Var(&o.to, "to", "end of the window, `TIME`, not included (required)")
	fs.Var(&o.pcs, "pc", "a PC `ID` the order names; repeat or separate with commas (default: every PC)")
	fs.StringVar(&o.identity, "identity", "", "the head librarian's age identity `FILE` (carrel keygen or age-keygen) (required)")
	fs.StringVar(&o.out, "out", "", "the bundle folder to create, `DIR`; it must not exist (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("export takes no arguments, only flags (did you mean `carrel export verify DIR`?)")
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"--order", o.order.Ref}, {"--court", o.order.Court}, {"--requester", o.order.Requester},
		{"--exporter", o.order.Exporter}, {"--from", o.from.String()}, {"--to", o.to.String()},
		{"--identity", o.identity}, {"--out", o.out},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usagef("export needs %s: a court order, its window, the head librarian's key and a new folder", strings.Join(missing, ", "))
	}
	if !o.to.t.After(o.from.t) {
		return usagef("--to (%s) must be after --from (%s)", o.to.String(), o.from.String())
	}
	cfg, data, err := loadDataDir(o.configPath)
	if err != nil {
		return err
	}
	defer data.Close()
	opts := export.Options{
		Order: o.order, Window: export.Window{From: o.from.t, To: o.to.t}, PCs: o.pcs,
		IdentityFile: o.identity, Out: o.out, Config: cfg, DataDir: data.Path(), Version: version, Actor: cliActor(),
		Progress: progressPrinter(e.stderr), Step: exportStep,
	}
	res, err := export.Run(ctx, opts)
	err = data.Named(err)
	switch {
	case errors.Is(err, export.ErrInvalid):
		return usagef("%v", err)
	case errors.Is(err, export.ErrWrongIdentity):
		return &hintError{err: err, hint: "give --identity the head librarian's key file whose public key was in capture.recipients when the traffic was sealed"}
	case err != nil:
		return storeError(err)
	}
	w := e.stdout
	printCleaned(w, res.Cleaned)
	fmt.Fprintf(w, "exported order %s to %s\n", displayValue(o.order.Ref), displayValue(res.Dir))
	fmt.Fprintf(w, "  %d booking(s); %d sealed segment(s) with %d record(s) or packet(s) in the window", res.Bookings, res.Segments, res.InWindow)
	if res.Omitted > 0 {
		fmt.Fprintf(w, "; %d segment(s) could not be included (see data/custody.json)", res.Omitted)
	}
	fmt.Fprintf(w, "\n  %d audit entries with inclusion proofs; %d files, %s\n", res.Entries, res.Files, fmtBytes(res.Bytes))
	fmt.Fprintf(w, "  export.end is audit entry %d with tag manifest SHA-256 %s, signed in signature/; %s\n", res.EndSeq, res.TagSHA256, printable(res.Checkpoint))
	if res.Segments > 0 {
		fmt.Fprintf(w, "  the sealed segments are on legal hold until `carrel traffic release --order %s`\n", displayValue(o.order.Ref))
	}
	fmt.Fprintf(w, "check it with `carrel export verify %s`, or in the folder with `sha256sum -c manifest-sha256.txt`\n", displayValue(res.Dir))
	return nil
}

// printCleaned says what was done about exports a killed process left.
func printCleaned(w io.Writer, cs []export.Cleaned) {
	for _, c := range cs {
		order := displayValue(c.Order)
		switch {
		case c.Err != nil:
			fmt.Fprintf(w, "could not clean up after an unfinished export of order %s: %s\n", order, displayValue(c.Err.Error()))
		case c.Outcome == "removed":
			for _, dir := range c.Removed {
				fmt.Fprintf(w, "removed %s, the unfinished bundle of order %s left by an export that was killed\n", displayValue(dir), order)
			}
		case c.Outcome == "signed":
			fmt.Fprintf(w, "signed the bundle of order %s: its export was killed after recording export.end\n", order)
		default:
			fmt.Fprintf(w, "closed an unfinished export of order %s (%s)\n", order, c.Outcome)
		}
	}
}

func runExportClean(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("export clean", e)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("export clean takes no arguments")
	}
	cfg, data, err := loadDataDir(*configPath)
	if err != nil {
		return err
	}
	defer data.Close()
	cleaned, err := export.Clean(ctx, export.Options{Config: cfg, DataDir: data.Path(), Actor: cliActor()})
	if err != nil {
		return storeError(data.Named(err))
	}
	printCleaned(e.stdout, cleaned)
	if len(cleaned) == 0 {
		fmt.Fprintln(e.stdout, "no unfinished export to clean up")
	}
	for _, c := range cleaned {
		if c.Err != nil {
			return &silentError{code: exitFailure}
		}
	}
	return nil
}

// progressPrinter returns a progress callback that redraws one line on w
// when w is a terminal, and nil (no progress at all) otherwise: logs and
// pipes get only the summary.
func progressPrinter(w io.Writer) func(export.Progress) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(p export.Progress) {
		line := progressLine(p)
		if p.Done {
			fmt.Fprintf(w, "\r%s\n", line)
			return
		}
		fmt.Fprintf(w, "\r%s\x1b[K", line)
	}
}

// progressLine is one line of progress: files, bytes of sealed traffic
// read, and time left when it can be told.
func progressLine(p export.Progress) string {
	s := fmt.Sprintf("exporting: %d/%d files, %s of %s traffic", p.Files, p.FilesTotal, fmtBytes(p.Bytes), fmtBytes(p.BytesTotal))
	switch {
	case p.Done:
		s += fmt.Sprintf(", done in %s", p.Elapsed.Round(100*time.Millisecond))
	case p.Left() > 0:
		s += fmt.Sprintf(", about %s left", p.Left().Round(time.Second))
	}
	return s
}

func runExportVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("export verify", e)
	identity := fs.String("identity", "", "also decrypt the sealed traffic with this age identity `FILE` and check the decrypted files")
	var keys stringList
	fs.Var(&keys, "verifier", "the bundle must be signed by this verifier `KEY` (the PC's, kept off it: `carrel audit key`); repeatable")
	configPath := fs.String("config", "", "on the PC: the bundle must be signed by one of this PC's audit keys, found through this config `FILE`; without it nothing but the bundle is read")
	var witnessKeys stringList
	fs.Var(&witnessKeys, "witness-key", "check the bundle's cosigned checkpoint with this witness verifier `KEY` (from the witness's operator) instead of the keys it carries; the bundle must then be witnessed; repeatable")
	quorum := fs.Int("quorum", 1, "with --witness-key: how many of those witnesses must have cosigned (`N`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("export verify needs the bundle folder: carrel export verify DIR [--identity FILE] [--verifier KEY] [--config FILE]")
	}
	dir := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil { // flags may follow DIR
		return err
	}
	if fs.NArg() > 0 {
		return usagef("export verify takes one bundle folder")
	}
	var opts export.VerifyOptions
	if len(witnessKeys) > 0 {
		if _, err := audit.ParseWitnessKeys(witnessKeys); err != nil {
			return usagef("--witness-key: %v", err)
		}
		if *quorum < 1 || *quorum > len(witnessKeys) {
			return usagef("--quorum must be between 1 and the %d witness keys given", len(witnessKeys))
		}
		opts.WitnessKeys, opts.WitnessQuorum = witnessKeys, *quorum
	}
	if *identity != "" {
		ids, err := seal.LoadIdentities(*identity)
		if err != nil {
			return err
		}
		for _, id := range ids {
			opts.Identities = append(opts.Identities, age.Identity(id))
		}
	}
	trusted := []string(keys)
	if *configPath != "" {
		pcKeys, err := pcVerifiers(ctx, *configPath)
		if err != nil {
			return err
		}
		trusted = append(trusted, pcKeys...)
	}
	rep, err := export.VerifyDir(dir, opts)
	if errors.Is(err, export.ErrUnfinished) {
		return &hintError{err: err, hint: "an export was interrupted before it signed this bundle; on the PC, `carrel export clean` removes it (and lifts its legal holds): export again"}
	}
	if err != nil {
		return err
	}
	if len(trusted) > 0 && !slices.Contains(trusted, rep.Verifier) {
		return &hintError{err: fmt.Errorf("the bundle is signed by %s, which is not the key given (%s)", displayValue(rep.Verifier), strings.Join(trusted, ", ")),
			hint: "a bundle that verifies with another key proves nothing about this PC: it was made, or remade, by whoever holds that key"}
	}
	w := e.stdout
	fmt.Fprintf(w, "bundle %s verifies: order %s\n", displayValue(dir), displayValue(rep.Order))
	fmt.Fprintf(w, "  signed: export.end (audit entry %d) records this bag's tag manifest SHA-256 %s, proved against checkpoint %s\n",
		rep.EndSeq, rep.TagSHA256, printable(rep.SignedBy))
	fmt.Fprintf(w, "  %d payload files (%s) match both manifests; Payload-Oxum and tag manifests agree\n", rep.Files, fmtBytes(rep.Bytes))
	fmt.Fprintf(w, "  %d audit entries proved against %s\n", rep.Entries, printable(rep.Checkpoint))
	fmt.Fprintf(w, "  %d sealed segment(s) match their segment.sealed entries\n", rep.Segments)
	if rep.Decrypted {
		fmt.Fprintf(w, "  the decrypted files are exactly the sealed segments' content in the window\n")
	} else if rep.Segments > 0 {
		fmt.Fprintf(w, "  decrypted content not checked: give --identity to check it\n")
	}
	fmt.Fprintf(w, "verifier key: %s\n", displayValue(rep.Verifier))
	if len(trusted) > 0 {
		fmt.Fprintf(w, "  it is the key given: the bundle was signed with it\n")
	} else {
		fmt.Fprintf(w, "  compare it, off the PC, with the verifier key the head librarian keeps (`carrel audit key`, or --verifier KEY):\n")
		fmt.Fprintf(w, "  the bundle proves only what that key signed, and anyone can make a bundle that verifies with a key of their own\n")
	}
	if rep.Witnessed != "" {
		fmt.Fprintf(w, "witnessed: %s, checked with the witness keys from %s; %s extends it\n", printable(rep.Witnessed), rep.WitnessKeysFrom, printable(rep.Checkpoint))
		if len(witnessKeys) == 0 {
			fmt.Fprintf(w, "  the witness keys came with the bundle: check them against the ones the witnesses' operators publish (--witness-key KEY)\n")
		}
		return nil
	}
	fmt.Fprintf(w, "  to rule out a log rewritten on the PC, compare %s with a checkpoint kept off it (`carrel audit verify --trusted`) or a witness\n",
		printable(rep.SignedBy))
	return nil
}

// pcVerifiers returns every verifier key of the audit log of the PC whose
// config is at path.
func pcVerifiers(ctx context.Context, path string) ([]string, error) {
	l, err := auditLogFlags{config: &path, db: new(string)}.open()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Verifiers(ctx)
}
