//go:build linux

// Command capture-bench measures carrel's capture engine against tcpdump
// and tshark (see run.sh and BENCHMARKS.md, section Capture). It is a
// benchmark tool, not part of carrel.
//
//	capture-bench capture -i IF [-mode metadata|packets] [-seal DIR]
//	    run the engine until SIGINT, then print its counters
//	capture-bench gen -size 60|1514 -out FILE     frames for tcpreplay
//	capture-bench genmix -n N -out FILE           mixed traffic for decode
//	capture-bench rss                              RSS with capture idle
//	capture-bench offline [-n N] [-reps 7] [-tshark] traffic decode vs tcpdump -r (vs tshark)
//	capture-bench run [-reps 3] [-quick]           the whole comparison
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/seal"

	"filippo.io/age"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: capture-bench capture|gen|genmix|offline|rss|run ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "capture":
		err = runCapture(os.Args[2:])
	case "gen":
		err = runGen(os.Args[2:])
	case "genmix":
		err = runGenMix(os.Args[2:])
	case "rss":
		err = runRSS()
	case "run":
		err = runAll(os.Args[2:])
	case "offline":
		err = runOffline(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture-bench:", err)
		os.Exit(1)
	}
}

type discard struct{}

func (discard) Write([]byte, time.Time) error { return nil }
func (discard) Due(time.Time) bool            { return false }
func (discard) Cut() error                    { return nil }
func (discard) Close() error                  { return nil }

// nopRecorder stands in for the audit log: the benchmark measures capture
// and sealing, not auditing.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, audit.Event) (int64, error) { return 1, nil }

func runCapture(args []string) error {
	fs := flag.NewFlagSet("capture", flag.ExitOnError)
	iface := fs.String("i", "", "interface")
	mode := fs.String("mode", "metadata", "metadata or packets")
	sealDir := fs.String("seal", "", "seal into a traffic store in this folder (age, like the daemon)")
	ring := fs.Int("ring", 0, "ring size in bytes (0: the default, 8 MiB)")
	fs.Parse(args)
	m, err := capture.ParseMode(*mode)
	if err != nil {
		return err
	}
	s := capture.Settings{Interface: *iface, Mode: m, RingSize: *ring, CaseID: "bench", Sink: discard{}}
	if *sealDir != "" {
		id, _ := age.GenerateX25519Identity()
		st, err := seal.Open(context.Background(), *sealDir, seal.Options{Recorder: nopRecorder{}})
		if err != nil {
			return err
		}
		defer st.Close()
		hdr, err := capture.SegmentHeader(s)
		if err != nil {
			return err
		}
		format := seal.JSONL
		if m == capture.ModePackets {
			format = seal.PCAPNG
		}
		w, err := st.NewWriter(seal.WriterOptions{Case: "bench", Format: format, Header: hdr,
			Recipients: []string{id.Recipient().String()}, MaxAge: time.Minute, MaxSize: 16 << 20, MinFree: -1})
		if err != nil {
			return err
		}
		s.Sink = w
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var e capture.Engine
	if err := e.Start(ctx, s); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-e.Done():
	}
	st := e.Stop()
	fmt.Fprintf(os.Stderr, "carrel: packets=%d drops=%d records=%d errors=%d lost=%d\n", st.Packets, st.KernelDrops, st.Records, st.Errors, st.Lost)
	return e.Err()
}

// runRSS reports the resident memory of a process that links the capture
// engine and holds an Engine, with nothing started: what capture costs
// while no misuse case is active.
func runRSS() error {
	var e capture.Engine
	_ = e.Stats()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	fmt.Printf("rss_kib=%d\n", statusField(os.Getpid(), "VmRSS:"))
	return nil
}
