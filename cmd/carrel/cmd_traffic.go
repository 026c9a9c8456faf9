package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
func runTrafficDecode(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("traffic decode", e)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: carrel traffic decode FILE...\n\nPrints the records carrel would keep of the pcap or pcapng FILEs\n(flows, DNS questions, TLS SNI, HTTP Host) as JSON Lines.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("traffic decode needs at least one capture FILE")
	}
	for _, name := range fs.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := decodeFile(name, e.stdout); err != nil {
			return err
		}
	}
	return nil
}

func decodeFile(name string, w io.Writer) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := capture.DecodeCapture(f, capture.NewWriterSink(w)); err != nil {
		if errors.Is(err, capture.ErrNotCapture) {
			return &hintError{fmt.Errorf("%s: %w", name, err), "traffic decode reads pcap and pcapng files, as written by tcpdump -w, tshark -w or Wireshark"}
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
