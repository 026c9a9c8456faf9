package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/config"
)

func init() {
	auditCommands["witness"] = command{"witness", "the witnesses' state, and acknowledging a refusal: list | ack NAME", runAuditWitness}
}

var auditWitnessCommands = map[string]command{
	"list": {"list", "print what each witness last cosigned, its last error and any refusal", runAuditWitnessList},
	"ack":  {"ack", "acknowledge that witness NAME refused the log, after looking into it (recorded in the audit log): ack NAME", runAuditWitnessAck},
}

func runAuditWitness(ctx context.Context, e *env, args []string) error {
	return group{name: "audit witness", subs: auditWitnessCommands,
		note: "A refusal means the log is not an extension of what the witness cosigned: it was rolled back, rewritten,\nor wiped and started again. See the README, Witnesses, for what to do."}.run(ctx, e, args)
}

func runAuditWitnessList(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("audit witness list", e)
	lf := addAuditLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("audit witness list takes no arguments")
	}
	l, err := lf.open()
	if err != nil {
		return err
	}
	defer l.Close()
	states, err := l.WitnessStates(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WITNESS\tCOSIGNED\tAT\tREFUSAL\tLAST ERROR")
	for _, s := range states {
		refusal := "-"
		if r := s.Refusal; r != nil {
			refusal = fmt.Sprintf("%s at %s (entry %d)", r.Why, fmtTime(&r.At), r.Entry)
			if r.Pending() {
				refusal += " NOT ACKNOWLEDGED"
			} else {
				refusal += " acknowledged by " + r.AckedBy
			}
		}
		lastErr := "-"
		if s.Error != "" {
			lastErr = safeText(s.Error)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", displayValue(s.Name), s.Size, fmtTime(&s.Cosigned), refusal, lastErr)
	}
	return tw.Flush()
}

func runAuditWitnessAck(ctx context.Context, e *env, args []string) error {
	flags := newFlagSet("audit witness ack", e)
	path := configFlag(flags)
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return usagef("audit witness ack needs the witness's NAME (as carrel status shows it)")
	}
	name := flags.Arg(0)
	cfg, data, err := loadDataDir(*path)
	if err != nil {
		return err
	}
	defer data.Close()
	// The same log the service writes; several processes may append to it.
	log, err := audit.OpenIn(data.Path(), cfg.LogOrigin(), nil)
	if errors.Is(err, fs.ErrPermission) {
		return &hintError{err: err, hint: "run as root (Administrator on Windows): the audit log is private to the service"}
	}
	if err != nil {
		return data.Named(err)
	}
	defer log.Close()
	r, err := log.AcknowledgeRefusal(ctx, name, cliActor())
	if errors.Is(err, audit.ErrNoRefusal) {
		return &hintError{err: err, hint: "`carrel audit witness list` shows the witnesses and their refusals"}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "acknowledged the refusal by witness %s (%s at %s, entry %d); the acknowledgement is in the audit log\n",
		displayValue(name), r.Why, fmtTime(&r.At), r.Entry)
	if r.Why != "" {
		fmt.Fprintln(e.stdout, "the witness goes on refusing this log until it is reset at the witness or the original log is restored (README, Witnesses)")
	}
	return nil
}

// witnessKeyFlags are the flags that name trusted witness keys.
type witnessKeyFlags struct {
	keys   stringList
	quorum *int
}

func addWitnessKeyFlags(fs *flag.FlagSet) *witnessKeyFlags {
	f := &witnessKeyFlags{}
	fs.Var(&f.keys, "witness-key", "trust this witness verifier `KEY` (NAME+HASH+BASE64, from the witness's operator, kept off the PC) "+
		"instead of the keys in the config's audit.witnesses; repeatable")
	f.quorum = fs.Int("quorum", 0, "how many witnesses must have cosigned a checkpoint (`N`); default audit.witness_quorum, or 1 with --witness-key")
	return f
}

// resolve returns the witness keys to check with, the quorum, and where
// the keys came from. Without --witness-key it reads the config's, when
// the config can be read.
func (f *witnessKeyFlags) resolve(configPath string) (keys []string, quorum int, from string, err error) {
	if *f.quorum < 0 {
		return nil, 0, "", usagef("--quorum must be at least 1")
	}
	if len(f.keys) > 0 {
		if _, err := audit.ParseWitnessKeys(f.keys); err != nil {
			return nil, 0, "", usagef("--witness-key: %v", err)
		}
		quorum = max(*f.quorum, 1)
		if quorum > len(f.keys) {
			return nil, 0, "", usagef("--quorum %d is more than the %d witness keys given", quorum, len(f.keys))
		}
		return f.keys, quorum, "given with --witness-key", nil
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, max(*f.quorum, 1), "", nil // a copy judged away from its PC: no witness keys to check with
	}
	for _, w := range cfg.Audit.Witnesses {
		keys = append(keys, w.Key)
	}
	quorum = cfg.Audit.WitnessQuorum
	if *f.quorum > 0 {
		quorum = *f.quorum
	}
	return keys, quorum, "from the config on this PC", nil
}

// safeText quotes a stored message that holds control characters, so that
// no escape sequence reaches the terminal.
func safeText(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || !strconv.IsPrint(r) && r != '…' }) {
		return strconv.Quote(s)
	}
	return s
}
