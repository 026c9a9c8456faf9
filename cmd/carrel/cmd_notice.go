package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/misuse"
	"github.com/carrel-lib/carrel/internal/notice"
)

func init() {
	register(command{name: "notice", summary: "print the notice to post at the PCs for a misuse case (Danish or English, text or HTML)", run: runNotice})
}

type noticeOptions struct {
	configPath, caseID, lang, format string
}

func runNotice(ctx context.Context, e *env, args []string) error {
	var o noticeOptions
	fs := newFlagSet("notice", e)
	fs.StringVar(&o.configPath, "config", defaultConfigPath(), "config `FILE`")
	fs.StringVar(&o.caseID, "case", "", "the case `ID` (needed when the config declares more than one)")
	fs.StringVar(&o.lang, "lang", "da", "language: da or en")
	fs.StringVar(&o.format, "format", "text", "format: text, or html (a printable A4 page)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("notice takes no arguments")
	}
	if !slices.Contains(notice.Languages, o.lang) {
		return usagef("--lang must be one of %s", strings.Join(notice.Languages, ", "))
	}
	if !slices.Contains(notice.Formats, o.format) {
		return usagef("--format must be one of %s", strings.Join(notice.Formats, ", "))
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	c, err := pickCase(cfg, o.caseID)
	if err != nil {
		return err
	}
	// A notice can be printed before the case is complete (it must hang
	// before notice_posted_at is filled in), but say what else is missing.
	d := misuse.Decide(cfg, cfg.PC.ID, timeNow())
	for _, cd := range d.Cases {
		if cd.ID == c.Name() && cd.State == misuse.StateRefused {
			fmt.Fprintf(e.stderr, "note: case %s cannot capture yet: %s\n", displayValue(cd.ID), printable(cd.Reason))
		}
	}
	out, err := notice.Render(notice.Input{Case: c, Library: cfg.Library, Retention: cfg.Capture.TrafficRetention.D()}, o.lang, o.format)
	if err != nil {
		return err
	}
	// The notice quotes the config (the case's reason, the library's
	// name): what it holds is printed, not acted on by a terminal.
	_, err = io.WriteString(e.stdout, printable(string(out)))
	return err
}

func pickCase(cfg *config.Config, id string) (config.Case, error) {
	var names []string
	for _, c := range cfg.Cases {
		if id != "" && c.ID == id {
			return c, nil
		}
		names = append(names, c.Name())
	}
	switch {
	case len(cfg.Cases) == 0:
		return config.Case{}, &hintError{err: fmt.Errorf("the config declares no misuse case"),
			hint: "declare the case in a [[case]] table first (see carrel config init)"}
	case id != "":
		return config.Case{}, fmt.Errorf("no case %q in the config; it declares %s", id, quoteAll(names))
	case len(cfg.Cases) > 1:
		return config.Case{}, usagef("the config declares %d cases (%s); choose one with --case ID", len(names), quoteAll(names))
	}
	return cfg.Cases[0], nil
}

// quoteAll lists names from the config, each quoted when it needs to be.
func quoteAll(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = displayValue(n)
	}
	return strings.Join(out, ", ")
}
