package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
)

func init() {
	register(command{name: "booking", summary: "start, end or list bookings through the running service (start|end|list)", run: runBooking})
}

// bookingCommands are the subcommands of `carrel booking`; they talk to the
// running service through its local API.
var bookingCommands = map[string]command{
	"start": {"start", "start a booking: --ref REF [--patron CARD] [--planned-end TIME]", runBookingStart},
	"end":   {"end", "end a booking: --ref REF", runBookingEnd},
	"list":  {"list", "list bookings overlapping a window: [--from T] [--to T] [--format table|csv|json]; or one patron's: --patron CARD|- (root/Administrators)", runBookingList},
}

func runBooking(ctx context.Context, e *env, args []string) error {
	return group{name: "booking", subs: bookingCommands}.run(ctx, e, args)
}

type bookingStartOptions struct {
	ref        string
	patron     string
	plannedEnd timeFlag
}

func runBookingStart(ctx context.Context, e *env, args []string) error {
	var o bookingStartOptions
	fs := newFlagSet("booking start", e)
	target := addAPIFlags(fs)
	fs.StringVar(&o.ref, "ref", "", "the booking client's opaque booking `REF` (required)")
	fs.StringVar(&o.patron, "patron", "", "patron `CARD` number; stored only as a keyed hash")
	fs.Var(&o.plannedEnd, "planned-end", "when the booking is planned to end (`TIME`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.ref == "" || fs.NArg() > 0 {
		return usagef("booking start needs --ref REF and no other arguments")
	}
	client, apiErr, err := target.client()
	if err != nil {
		return err
	}
	req := api.StartRequest{Ref: o.ref, Patron: o.patron}
	if !o.plannedEnd.t.IsZero() {
		req.PlannedEnd = &o.plannedEnd.t
	}
	b, err := client.Start(ctx, req)
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(e.stdout, "started booking %s on %s at %s\n", b.Ref, b.PC, fmtTime(&b.Start))
	return nil
}

func runBookingEnd(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("booking end", e)
	target := addAPIFlags(fs)
	ref := fs.String("ref", "", "the booking `REF` to end (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ref == "" || fs.NArg() > 0 {
		return usagef("booking end needs --ref REF and no other arguments")
	}
	client, apiErr, err := target.client()
	if err != nil {
		return err
	}
	b, err := client.End(ctx, *ref)
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(e.stdout, "ended booking %s on %s at %s (%s)\n", b.Ref, b.PC, fmtTime(b.End), b.Start.Sub(*b.End).Abs().Round(time.Second))
	return nil
}

func runBookingList(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("booking list", e)
	target := addAPIFlags(fs)
	var from, to timeFlag
	fs.Var(&from, "from", "list bookings overlapping the window from `TIME`")
	fs.Var(&to, "to", "… to `TIME`")
	patron := fs.String("patron", "", "list every stored booking made with this patron `CARD` (root/Administrators; the look-up is audited, never the card); - reads it from standard input, out of the process list and shell history")
	format := fs.String("format", "table", "output `FORMAT`: table, csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("booking list takes no arguments")
	}
	write, ok := bookingWriters[*format]
	if !ok {
		return usagef("--format must be table, csv or json, not %q", *format)
	}
	if !from.t.IsZero() && !to.t.IsZero() && !to.t.After(from.t) {
		return usagef("--to must be after --from")
	}
	if *patron != "" && (!from.t.IsZero() || !to.t.IsZero()) {
		return usagef("--patron lists every stored booking of the card; it takes no --from or --to")
	}
	if *patron == "-" {
		card, err := readCard(e.stdin)
		if err != nil {
			return err
		}
		*patron = card
	}
	client, apiErr, err := target.client()
	if err != nil {
		return err
	}
	var bs []api.Booking
	if *patron != "" {
		bs, err = client.ByPatron(ctx, *patron)
	} else {
		bs, err = client.List(ctx, from.t, to.t)
	}
	if err != nil {
		return apiErr(err)
	}
	return write(e.stdout, bs)
}

// readCard reads a card number, the first line of r.
func readCard(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the patron card from standard input: %w", err)
	}
	card := strings.TrimRight(line, "\r\n")
	if card == "" {
		return "", usagef("--patron -: standard input holds no card number")
	}
	return card, nil
}

var bookingWriters = map[string]func(io.Writer, []api.Booking) error{
	"table": writeBookingTable,
	"csv":   writeBookingCSV,
	"json": func(w io.Writer, bs []api.Booking) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(bs)
	},
}

// bookingFields is the column order of the table and CSV forms.
var bookingHeader = []string{"pc", "ref", "start", "end", "ended", "planned_end", "patron"}

func bookingFields(b api.Booking, ts func(*time.Time) string) []string {
	patron := "no"
	if b.HasPatron {
		patron = "yes"
	}
	ended := b.Ended
	if ended == "" {
		ended = "open"
	}
	return []string{b.PC, b.Ref, ts(&b.Start), ts(b.End), ended, ts(b.PlannedEnd), patron}
}

func writeBookingTable(w io.Writer, bs []api.Booking) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(f []string) {
		for i, s := range f {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, s)
		}
		io.WriteString(tw, "\n")
	}
	row(bookingHeader)
	for _, b := range bs {
		row(bookingFields(b, fmtTime))
	}
	return tw.Flush()
}

func writeBookingCSV(w io.Writer, bs []api.Booking) error {
	cw := csv.NewWriter(w)
	rfc := func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	cw.Write(bookingHeader)
	for _, b := range bs {
		cw.Write(bookingFields(b, rfc))
	}
	cw.Flush()
	return cw.Error()
}
