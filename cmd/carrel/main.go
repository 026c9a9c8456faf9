// Command carrel is the carrel service and its command-line tool.
//
// main parses nothing itself: it finds the subcommand, runs it, and maps the
// error it returns to an exit code in one place (exitCode).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Exit codes. They are part of carrel's interface for scripts and are listed
// in `carrel --help`.
const (
	exitOK         = 0 // success
	exitFailure    = 1 // the command ran and failed: invalid config, verify failed, refused request
	exitUsage      = 2 // bad command line
	exitNotRunning = 3 // the service is not running (booking and status commands)
)

// command is one subcommand. Each lives in its own cmd_<name>.go file and
// registers itself from init, so adding a command never edits this file.
type command struct {
	name    string
	summary string // one line for `carrel --help`
	run     func(ctx context.Context, env *env, args []string) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("carrel: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// env is what a command may touch of the outside world; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signalContext()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// signalContext is cancelled by SIGINT or SIGTERM, which stop `carrel run`
// cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "carrel: unknown command %q (see carrel --help)\n", args[0])
		return exitUsage
	}
	err := c.run(ctx, e, args[1:])
	return report(e.stderr, c.name, err)
}

// report prints err the way users see it and returns its exit code.
func report(w io.Writer, name string, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	var silent *silentError
	if errors.As(err, &silent) {
		return code
	}
	fmt.Fprintf(w, "carrel %s: %s\n", name, printable(err.Error()))
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "hint: %s\n", printable(h.Hint()))
	}
	return code
}

// printable escapes, in text that may quote outside input (a file name, a
// value from a bag or a config), whatever a terminal would act on: control
// characters but newline and tab, DEL, C1 controls, bytes that are not
// UTF-8, and Unicode format characters (bidirectional overrides, zero-width
// characters). The packages quote the names they print; this is the net
// under them, so that no error can move the cursor, clear a line or paint
// a line of its own.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// exitCode maps an error to an exit code. It is the only place that does.
func exitCode(err error) int {
	var ue *usageError
	var nr *notRunningError
	var silent *silentError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nr):
		return exitNotRunning
	case errors.As(err, &silent):
		return silent.code
	default:
		return exitFailure
	}
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// notRunningError means the service could not be reached.
type notRunningError struct{ err error }

func (e *notRunningError) Error() string { return e.err.Error() }
func (e *notRunningError) Unwrap() error { return e.err }
func (e *notRunningError) Hint() string {
	return "start it with `carrel service start` (or `carrel run` in the foreground)"
}

// silentError carries an exit code for a command that has already printed
// everything the user needs (for example `carrel config check` listing its
// problems one per line).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// hintError decorates an error with a line telling the user what to do.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("carrel records PC booking times for public library PCs; it logs network traffic\n")
	b.WriteString("only under a declared misuse case, sealed to the head librarian's key.\n\n")
	b.WriteString("Usage: carrel <command> [flags] [args]\n\nCommands:\n")
	writeCommands(&b, commands)
	b.WriteString("\nEvery command that reads the config takes --config FILE (default " + defaultConfigPath() + ");\n")
	b.WriteString("keygen, version, traffic decode and export verify read none (export verify takes it\n")
	b.WriteString("only to check that a bundle is signed with one of this PC's audit keys).\n")
	b.WriteString("Run `carrel <command> --help` for its flags.\n\n")
	b.WriteString("Exit codes:\n")
	b.WriteString("  0  success\n")
	b.WriteString("  1  the command failed (invalid config, failed verification, refused request)\n")
	b.WriteString("  2  bad command line\n")
	b.WriteString("  3  the carrel service is not running\n")
	io.WriteString(w, b.String())
}
