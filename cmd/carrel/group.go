package main

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// group is a command made of subcommands (`carrel audit list`, `carrel
// traffic decode`). It dispatches on the first argument and prints the
// subcommands when there is none, an unknown one, or -h.
type group struct {
	name string
	subs map[string]command
	note string // a line printed after the list of subcommands
}

func (g group) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		g.usage(e.stderr)
		return usagef("%s needs a subcommand", g.name)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		g.usage(e.stdout)
		return nil
	}
	c, ok := g.subs[args[0]]
	if !ok {
		g.usage(e.stderr)
		return usagef("unknown %s subcommand %q", g.name, args[0])
	}
	return c.run(ctx, e, args[1:])
}

func (g group) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: carrel %s <subcommand> [flags] [args]\n\nSubcommands:\n", g.name)
	writeCommands(w, g.subs)
	if g.note != "" {
		fmt.Fprintln(w, "\n"+g.note)
	}
}

// writeCommands lists commands by name with their summaries.
func writeCommands(w io.Writer, cs map[string]command) {
	names := make([]string, 0, len(cs))
	width := 0
	for n := range cs {
		names = append(names, n)
		width = max(width, len(n))
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, cs[n].summary)
	}
}
