package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/export"
	"github.com/carrel-lib/carrel/internal/seal"
)

func init() {
	register(command{name: "export", summary: "export bookings and traffic for a court order as a BagIt bundle; `export verify DIR` checks one", run: runExport})
}

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
		return runExportVerify(e, args[1:])
	}
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
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	data, err := openDataDir(cfg)
	if err != nil {
		return err
	}
	defer data.Close()
	opts := export.Options{
		Order: o.order, Window: export.Window{From: o.from.t, To: o.to.t}, PCs: o.pcs,
		IdentityFile: o.identity, Out: o.out, Config: cfg, DataDir: data.Path(), Version: version, Actor: cliActor(),
		Progress: progressPrinter(e.stderr),
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
	fmt.Fprintf(w, "exported order %s to %s\n", o.order.Ref, res.Dir)
	fmt.Fprintf(w, "  %d booking(s); %d sealed segment(s) with %d record(s) or packet(s) in the window", res.Bookings, res.Segments, res.InWindow)
	if res.Omitted > 0 {
		fmt.Fprintf(w, "; %d segment(s) could not be included (see data/custody.json)", res.Omitted)
	}
	fmt.Fprintf(w, "\n  %d audit entries with inclusion proofs; %d files, %s\n", res.Entries, res.Files, fmtBytes(res.Bytes))
	fmt.Fprintf(w, "  export.end is audit entry %d with tag manifest SHA-256 %s; %s\n", res.EndSeq, res.TagSHA256, res.Checkpoint)
	if res.Segments > 0 {
		fmt.Fprintf(w, "  the sealed segments are on legal hold until `carrel traffic release --order %s`\n", o.order.Ref)
	}
	fmt.Fprintf(w, "check it with `carrel export verify %s`, or in the folder with `sha256sum -c manifest-sha256.txt`\n", res.Dir)
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

func runExportVerify(e *env, args []string) error {
	fs := newFlagSet("export verify", e)
	identity := fs.String("identity", "", "also decrypt the sealed traffic with this age identity `FILE` and check the decrypted files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("export verify needs the bundle folder: carrel export verify DIR [--identity FILE]")
	}
	dir := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil { // flags may follow DIR
		return err
	}
	if fs.NArg() > 0 {
		return usagef("export verify takes one bundle folder")
	}
	var opts export.VerifyOptions
	if *identity != "" {
		ids, err := seal.LoadIdentities(*identity)
		if err != nil {
			return err
		}
		for _, id := range ids {
			opts.Identities = append(opts.Identities, age.Identity(id))
		}
	}
	rep, err := export.VerifyDir(dir, opts)
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "bundle %s verifies: order %s\n", dir, rep.Order)
	fmt.Fprintf(w, "  %d payload files (%s) match both manifests; Payload-Oxum and tag manifests agree\n", rep.Files, fmtBytes(rep.Bytes))
	fmt.Fprintf(w, "  %d audit entries proved against %s\n", rep.Entries, rep.Checkpoint)
	fmt.Fprintf(w, "  %d sealed segment(s) match their segment.sealed entries\n", rep.Segments)
	if rep.Decrypted {
		fmt.Fprintf(w, "  the decrypted files are exactly the sealed segments' content in the window\n")
	} else if rep.Segments > 0 {
		fmt.Fprintf(w, "  decrypted content not checked: give --identity to check it\n")
	}
	fmt.Fprintf(w, "verifier key: %s\n", rep.Verifier)
	fmt.Fprintf(w, "  compare it with the key the head librarian keeps (`carrel audit key`): a bundle proves only what that key signed\n")
	fmt.Fprintf(w, "tag manifest SHA-256: %s\n", rep.TagSHA256)
	fmt.Fprintf(w, "  the export.end entry in the PC's audit log carries it (`carrel audit list --kind export.end`; `carrel audit prove SEQ` proves that entry)\n")
	return nil
}
