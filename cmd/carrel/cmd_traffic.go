package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/carrel-lib/carrel/internal/capture"
)

// trafficCommands holds the sub-subcommands of `carrel traffic`. decode lives
// here; list and release are added from init() in cmd_traffic_seal.go, so
// each owner edits only their own file. Initialised as a variable (not in an
// init) so that it exists before any file's init() inserts into it.
var trafficCommands = map[string]command{
	"decode": {name: "decode", summary: "print the records of pcap/pcapng FILEs as JSON Lines (reads no config)", run: runTrafficDecode},
}

func init() {
	register(command{name: "traffic", summary: "decode captures; list and release sealed traffic segments", run: runTraffic})
}

// runTraffic dispatches on args[0] through trafficCommands.
func runTraffic(ctx context.Context, e *env, args []string) error {
	return group{name: "traffic", subs: trafficCommands}.run(ctx, e, args)
}

// runTrafficDecode runs the metadata extractor over capture files and
// prints the records as JSON Lines. It reads no config and needs no root.
// A file cut inside a record (a copy interrupted, a full disk) gets a
// warning naming it and the record; its records up to the cut are printed,
// the next files are still decoded, and the exit status is 1, so a script
// cannot take the output for the whole capture. Any other error stops.
func runTrafficDecode(ctx context.Context, e *env, args []string) error {
	flags := newFlagSet("traffic decode", e)
	flags.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: carrel traffic decode FILE...\n\nPrints the records carrel would keep of the pcap or pcapng FILEs (plain or\ngzip-compressed): flows, DNS questions, TLS and QUIC server names, HTTP Host,\nas JSON Lines. A FILE cut short is decoded up to the cut, with a warning,\nand the exit status is then 1.")
	}
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return usagef("traffic decode needs at least one capture FILE")
	}
	truncated := false
	for _, name := range flags.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := decodeFile(ctx, name, e.stdout)
		if errors.Is(err, capture.ErrTruncated) && ctx.Err() == nil {
			fmt.Fprintf(e.stderr, "carrel traffic decode: warning: %v; the records before it are printed\n", err)
			truncated = true
			continue
		}
		if err != nil {
			return err
		}
	}
	if truncated {
		return &silentError{code: exitFailure}
	}
	return nil
}

// decodeFile decodes one capture file to w. File names come from the
// command line and may hold anything: errors quote them.
func decodeFile(ctx context.Context, name string, w io.Writer) error {
	f, err := os.Open(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // its text holds the raw name
		}
		return fmt.Errorf("opening %q: %w", name, err)
	}
	defer f.Close()
	if _, err := capture.DecodeCapture(ctxReader{ctx, f}, capture.NewWriterSink(w)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, capture.ErrNotCapture) {
			return &hintError{fmt.Errorf("%q: %w", name, err), "traffic decode reads pcap and pcapng files, as written by tcpdump -w, tshark -w or Wireshark"}
		}
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

// ctxReader ends a long decode when ctx ends (Ctrl-C): the decoder reads
// in blocks of 256 KiB, so this costs nothing measurable.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
