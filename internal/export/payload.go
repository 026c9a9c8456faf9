package export

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/seal"
)

// Payload file names.
const (
	bookingsCSV = "data/bookings.csv"
	trafficDir  = "data/traffic"
	configFile  = "data/config/carrel.toml"
	custodyFile = "data/custody.json"
)

// decryptedNames returns the files a sealed segment's decrypted content is
// written to: X.jsonl.age gives X.jsonl and X.csv, X.pcapng.age gives
// X.pcapng.
func decryptedNames(segment string) ([]string, error) {
	n, err := seal.ParseName(segment)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(segment, ".age")
	switch n.Format {
	case seal.JSONL:
		return []string{base, strings.TrimSuffix(base, ".jsonl") + ".csv"}, nil
	case seal.PCAPNG:
		return []string{base}, nil
	}
	return nil, fmt.Errorf("segment %s: unknown format %q", segment, n.Format)
}

// restrict writes the window's part of a decrypted segment to outs (the
// files decryptedNames names, in that order) and returns how many records
// or packets it kept.
func restrict(format seal.Format, segment string, plain io.Reader, win Window, outs []io.Writer) (int64, error) {
	switch format {
	case seal.JSONL:
		return restrictJSONL(plain, win, outs[0], outs[1])
	case seal.PCAPNG:
		return restrictPcapng(plain, win, segment, outs[0])
	}
	return 0, fmt.Errorf("unknown format %q", format)
}

// writeSegment copies a sealed segment into the bag as it is stored and,
// in the same pass over its ciphertext, decrypts it and writes its content
// restricted to the window. The copy must match the size and SHA-256 the
// traffic index recorded when it was sealed.
func (x *exporter) writeSegment(s seal.Segment) (SegmentJSON, error) {
	sj := SegmentJSON{Name: s.Name, Case: s.Case, Format: string(s.Format), From: s.From, To: s.To, Records: s.Records}
	src, err := x.store.Path(s.Name)
	if err != nil {
		return sj, err
	}
	f, err := os.Open(src)
	if err != nil {
		return sj, fmt.Errorf("segment %s: %w", s.Name, err)
	}
	defer f.Close()
	names, err := decryptedNames(s.Name)
	if err != nil {
		return sj, err
	}
	sealed, err := x.bag.create(trafficDir + "/" + s.Name)
	if err != nil {
		return sj, err
	}
	defer sealed.abort()
	outs := make([]*sumFile, len(names))
	ws := make([]io.Writer, len(names))
	for i, n := range names {
		if outs[i], err = x.bag.create(trafficDir + "/" + n); err != nil {
			return sj, err
		}
		defer outs[i].abort()
		ws[i] = outs[i]
	}
	ct := io.TeeReader(&countReader{r: f, m: x.bag.progress}, sealed)
	plain, err := age.Decrypt(ct, x.ids...)
	if err != nil {
		return sj, x.segmentError(s, sealed, ct, identityError(s.Name, x.o.IdentityFile, err))
	}
	sj.InWindow, err = restrict(s.Format, s.Name, plain, x.win, ws)
	if err == nil {
		// age stops at its final chunk; anything after it would be
		// missing from the copy.
		_, err = io.Copy(io.Discard, ct)
	}
	if err != nil {
		return sj, x.segmentError(s, sealed, ct, fmt.Errorf("segment %s: %w", s.Name, err))
	}
	if err := sealed.Close(); err != nil {
		return sj, err
	}
	got := sealed.sum
	if got.Size != s.Size || hex.EncodeToString(got.SHA256) != s.SHA256 {
		return sj, fmt.Errorf("segment %s: the file has %d bytes with SHA-256 %x, the traffic index recorded %d bytes with %s when it was sealed: %w",
			s.Name, got.Size, got.SHA256, s.Size, s.SHA256, seal.ErrCorrupt)
	}
	sj.Sealed = fileJSON(got)
	for _, o := range outs {
		if err := o.Close(); err != nil {
			return sj, err
		}
		sj.Content = append(sj.Content, fileJSON(o.sum))
	}
	return sj, nil
}

// segmentError prefers "the file does not match the index" over what
// decrypting or parsing it said: a damaged file explains both.
func (x *exporter) segmentError(s seal.Segment, sealed *sumFile, rest io.Reader, err error) error {
	io.Copy(io.Discard, rest)
	if sealed.n != s.Size || hex.EncodeToString(sealed.h256.Sum(nil)) != s.SHA256 {
		return fmt.Errorf("segment %s does not match the size and SHA-256 recorded when it was sealed (altered or truncated): %w", s.Name, seal.ErrCorrupt)
	}
	return err
}

// countReader feeds the progress meter with the ciphertext read.
type countReader struct {
	r io.Reader
	m *meter
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.addBytes(int64(n))
	return n, err
}

func fileJSON(f fileSum) FileJSON {
	return FileJSON{Path: f.Path, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256)}
}

// bookingsHeader is the column order of data/bookings.csv. patron is "yes"
// when the booking client gave a card number, which the register keeps
// only as a keyed hash that never leaves it: the booking reference is what
// the library's booking system resolves.
var bookingsHeader = []string{"pc", "ref", "start", "end", "ended", "planned_end", "patron"}

func (x *exporter) writeBookings() error {
	f, err := x.bag.create(bookingsCSV)
	if err != nil {
		return err
	}
	defer f.abort()
	if err := writeBookingsCSV(f, x.booked); err != nil {
		return err
	}
	x.custody.Bookings.File, x.custody.Bookings.Rows = bookingsCSV, len(x.booked)
	return f.Close()
}

func writeBookingsCSV(w io.Writer, bs []booking.Booking) error {
	cw := csv.NewWriter(w)
	cw.Write(bookingsHeader)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, b := range bs {
		ended, patron := string(b.Ended), "no"
		if ended == "" {
			ended = "open"
		}
		if b.HasPatron {
			patron = "yes"
		}
		cw.Write([]string{b.PC, b.Ref, ts(b.Start), ts(b.End), ended, ts(b.PlannedEnd), patron})
	}
	cw.Flush()
	return cw.Error()
}

// writeConfig copies the config file the export ran with: it holds the
// case declarations (reason, who declared and approved, when the notice
// was posted), and its SHA-256 ties it to config.accepted entries.
func (x *exporter) writeConfig() error {
	if x.cfg.Path == "" {
		return nil
	}
	b, err := os.ReadFile(x.cfg.Path)
	if err != nil {
		return fmt.Errorf("reading the config: %w", err)
	}
	if sha256.Sum256(b) != x.cfg.SHA256 {
		return fmt.Errorf("the config file %s changed while the export ran; run it again", x.cfg.Path)
	}
	_, err = x.bag.writeFile(configFile, b)
	return err
}

// writeAudit signs a checkpoint covering export.start and the legal hold,
// and writes every selected entry with its inclusion proof against it, the
// checkpoint and the verifier key.
func (x *exporter) writeAudit(ctx context.Context) error {
	cp, err := x.log.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("signing a checkpoint: %w", err)
	}
	x.auditCP = cp.Size
	segs := map[string]bool{}
	for _, s := range x.sealed {
		segs[s.Name] = true
	}
	for _, s := range x.omitted {
		segs[s.Name] = true
	}
	entries, err := selectEntries(ctx, x.log, auditSelection{win: x.win, cases: x.cases, segments: segs,
		config: x.cfg.SHA256, order: x.o.Order.SHA256(), startSeq: x.startSeq})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Seq >= cp.Size {
			continue // recorded by the service after the checkpoint
		}
		p, err := x.log.ProveAt(ctx, e.Seq, cp)
		if err != nil {
			return fmt.Errorf("proving audit entry %d: %w", e.Seq, err)
		}
		if _, err := x.bag.writeFile(entryPath(e.Seq), p.Entry); err != nil {
			return err
		}
		if _, err := x.bag.writeFile(proofPath(e.Seq), p.Inclusion.Text()); err != nil {
			return err
		}
		x.custody.Audit.Entries++
	}
	if _, err := x.bag.writeFile(checkpointFile, cp.Note); err != nil {
		return err
	}
	if _, err := x.bag.writeFile(verifierKeyFile, []byte(x.log.Verifier()+"\n")); err != nil {
		return err
	}
	if err := x.writeWitnessed(ctx, cp); err != nil {
		return err
	}
	x.custody.Audit.Origin, x.custody.Audit.CheckpointSize = cp.Origin, cp.Size
	return nil
}

func (x *exporter) initCustody() {
	o := x.o
	host := o.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	c := &x.custody
	c.Format = custodyFormat
	c.Order = OrderJSON{Ref: o.Order.Ref, Court: o.Order.Court, Requester: o.Order.Requester}
	c.Exporter, c.ExportedAt, c.Actor = o.Order.Exporter, o.Now().UTC(), o.Actor
	c.PC, c.Host, c.Tool = x.cfg.PC.ID, host, "carrel "+x.version()
	c.Window.From, c.Window.To = x.win.From, x.win.To
	c.PCsRequested = append([]string{}, o.PCs...)
	c.Cases = append([]string{}, x.cases...)
	c.ConfigSHA256 = hex.EncodeToString(x.cfg.SHA256[:])
	c.Segments, c.Omitted = []SegmentJSON{}, append([]OmittedJSON{}, x.omitted...)
	c.Audit.ExportStartSeq = x.startSeq
}

func (x *exporter) version() string {
	if x.o.Version == "" {
		return "dev"
	}
	return x.o.Version
}

// bag-info.txt labels carrel adds to the RFC's reserved ones. Verify reads
// the window back from them.
const (
	labelFrom = "Carrel-Window-From"
	labelTo   = "Carrel-Window-To"
)

func (x *exporter) bagInfo() []field {
	o := x.o
	pcs := "all"
	if len(o.PCs) > 0 {
		pcs = strings.Join(o.PCs, " ")
	}
	cases := "none"
	if len(x.cases) > 0 {
		cases = strings.Join(x.cases, " ")
	}
	traffic := fmt.Sprintf("%d sealed segment(s) overlapping the window, each with its content in the window decrypted", len(x.sealed))
	switch {
	case len(x.sealed) == 0 && len(x.cases) == 0:
		traffic = "none: no misuse case covered this window on this PC, so no traffic was logged"
	case len(x.sealed) == 0:
		traffic = "none: no sealed traffic overlaps the window"
	}
	if len(x.omitted) > 0 {
		traffic += fmt.Sprintf("; %d segment(s) could not be included (see data/custody.json)", len(x.omitted))
	}
	library := flat(x.cfg.Library.Name)
	if library == "" {
		library = "(library name not configured)"
	}
	return []field{
		{"Source-Organization", library},
		{"Contact-Name", o.Order.Exporter},
		{"External-Identifier", o.Order.Ref},
		{"External-Description", "Court-order export of PC booking times and of network traffic logged under declared misuse cases, made by carrel"},
		{"Bagging-Date", o.Now().UTC().Format("2006-01-02")},
		{"Bag-Software-Agent", "carrel " + x.version()},
		{"Payload-Oxum", x.bag.oxum()},
		{"Carrel-Court", o.Order.Court},
		{"Carrel-Requester", o.Order.Requester},
		{labelFrom, x.win.From.Format(time.RFC3339Nano)},
		{labelTo, x.win.To.Format(time.RFC3339Nano)},
		{"Carrel-PC", x.cfg.PC.ID},
		{"Carrel-PCs-Requested", pcs},
		{"Carrel-Cases", cases},
		{"Carrel-Bookings", fmt.Sprintf("%d booking(s) overlapping the window, each whole as recorded", len(x.booked))},
		{"Carrel-Traffic", traffic},
	}
}

// flat turns control characters (line breaks) into spaces, for config text
// that goes on one bag-info.txt line.
func flat(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}
