package main

import (
	"errors"
	"flag"
)

// newFlagSet returns a FlagSet that reports errors instead of exiting, so
// that exit codes stay in one place.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("carrel "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and turns flag errors into usage errors. -h prints
// the flags and succeeds.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return &silentError{code: exitOK}
	}
	if err != nil {
		return &silentError{code: exitUsage} // flag has printed the problem and the flags
	}
	return nil
}

// configFlag adds the --config flag every command takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfigPath(), "config `FILE`")
}
