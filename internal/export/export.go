package export

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// bookingsFile is the register in the data folder; the daemon's name.
const bookingsFile = "bookings.db"

// Result says what an export made.
type Result struct {
	Dir        string // the bag
	Files      int    // payload files
	Bytes      int64  // payload bytes
	Bookings   int
	Segments   int   // sealed segments included
	Omitted    int   // segments overlapping the window that could not be included
	InWindow   int64 // decrypted records and packets in the window
	Entries    int   // audit entries with proofs
	Cases      []string
	TagSHA256  string // of tagmanifest-sha256.txt, as recorded in export.end
	EndSeq     int64  // the export.end entry
	Checkpoint string // one line naming the checkpoint signed after export.end
	// Cleaned says what was left by exports a killed process did not
	// finish, and what the export did with it before it began.
	Cleaned []Cleaned
}

// Run makes the bundle for one court order at o.Out.
//
// Order of work: check the request, read the identity and check that it
// is the head librarian's, clean up after exports a killed process left
// unfinished (Clean), record the export in the data folder (pending),
// record export.start, put the segments on legal hold, write traffic,
// bookings, config and audit files, custody.json and the BagIt files into
// a temporary folder beside o.Out, sync it and rename it to o.Out; then
// record export.end with the tag manifest's SHA-256 and write the
// signature (signature.go).
//
// A failure or a cancelled ctx (Ctrl-C, SIGTERM, SIGHUP) before the rename
// removes the temporary folder, which holds decrypted traffic, records
// export.fail and lifts the legal holds this export placed. Once the
// bundle is in place the export finishes whatever ctx says: what is left
// takes milliseconds, and stopping would only throw the bundle away. A
// failure then removes the bundle as well. A killed process leaves its
// marker behind; Clean (the next export, or `carrel export clean`) finds
// it and finishes the cleanup. Whatever happens, no bundle without its
// signature stays in place, and none passes Verify.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actor == "" {
		o.Actor = "export"
	}
	keys, err := seal.LoadIdentities(o.IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("reading the head librarian's identity: %w", err)
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%s already exists: an export never writes into or over an existing folder", displayName(out))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the folder %s to create the bundle in does not exist", displayName(filepath.Dir(out)))
	}
	cfg := o.Config
	pc := cfg.PC.ID
	if !o.includesPC(pc) {
		return nil, fmt.Errorf("this PC is %s, which the order does not name (%s): its bookings and traffic are not part of it; run the export on the PCs it names",
			pc, strings.Join(o.PCs, ", "))
	}
	x := &exporter{o: o, keys: keys, ids: identities(keys), cfg: cfg, win: Window{o.Window.From.UTC(), o.Window.To.UTC()}, startSeq: -1}
	defer x.close()
	// A PC that never captured has no traffic a key could open: only
	// capture.recipients can vouch for the key, and nothing is opened
	// (the audit log would be created, its key recorded) before it has.
	if !x.configuredRecipient() && seal.Exists(x.dataDir()) != nil {
		return nil, x.recipientError()
	}
	if err := x.open(ctx); err != nil {
		return nil, err
	}
	if err := x.plan(ctx); err != nil {
		return nil, err
	}
	if err := x.checkIdentity(); err != nil {
		return nil, err
	}
	if err := x.checkRecipient(); err != nil {
		return nil, err
	}
	// Decrypted traffic a killed export left on a stick must not wait for
	// someone to remember `carrel export clean`.
	cleaned, err := x.clean(ctx)
	if err != nil {
		return nil, err
	}
	x.pending, err = newPending(x.dataDir(), o.Order.Ref, out)
	if err != nil {
		return nil, err
	}
	res, err := x.export(ctx, out)
	if err != nil {
		return nil, x.fail(err)
	}
	res.Cleaned = cleaned
	if err := x.pending.done(); err != nil {
		return nil, fmt.Errorf("the bundle %s is complete and signed, but %w", displayName(out), err)
	}
	return res, nil
}

// exporter holds one export's state.
type exporter struct {
	o    Options
	keys []*age.X25519Identity
	ids  []age.Identity
	cfg  *config.Config
	win  Window

	log      *audit.Log
	store    *seal.Store // nil when this PC never captured
	bookings *booking.Store

	booked   []booking.Booking
	sealed   []seal.Segment
	omitted  []OmittedJSON
	cases    []string
	bag      *bagWriter
	step     string // what the export was doing, for export.fail
	startSeq int64  // -1 until export.start is recorded
	custody  Custody

	pending *pending // this export's marker in the data folder
	holding []string // segments this export put on legal hold
	partial string   // the temporary folder, once made
	out     string   // the bundle, once the temporary folder was renamed to it
	auditCP int64    // the size of the checkpoint the bundle's audit entries are proved against
	endSeq  int64    // the export.end entry, once recorded (else 0)
}

// dataDir is the path to open files in the data folder with.
func (x *exporter) dataDir() string {
	if x.o.DataDir != "" {
		return x.o.DataDir
	}
	return x.cfg.Storage.DataDir
}

func (x *exporter) open(ctx context.Context) error {
	dir := x.dataDir()
	var err error
	x.log, err = audit.OpenIn(dir, x.cfg.LogOrigin(), x.o.Now)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	x.bookings, err = booking.OpenReadOnly(filepath.Join(dir, bookingsFile))
	if err != nil && !errors.Is(err, booking.ErrNotExist) {
		return err
	}
	// Only open the traffic store for writing holds when one exists:
	// opening it with a Recorder would create an empty one.
	if seal.Exists(dir) != nil {
		return nil
	}
	x.store, err = seal.Open(ctx, dir, seal.Options{Recorder: x.log, Actor: x.o.Actor, Now: x.o.Now})
	return err
}

func (x *exporter) close() {
	if x.store != nil {
		x.store.Close()
	}
	if x.bookings != nil {
		x.bookings.Close()
	}
	if x.log != nil {
		x.log.Close()
	}
}

// plan selects the bookings, segments and cases of the export.
func (x *exporter) plan(ctx context.Context) error {
	if x.bookings != nil {
		all, err := x.bookings.List(ctx, x.win.From, x.win.To)
		if err != nil {
			return err
		}
		for _, b := range all {
			if x.o.includesPC(b.PC) {
				x.booked = append(x.booked, b)
			}
		}
	}
	cases := map[string]bool{}
	if x.store != nil {
		segs, err := x.store.Segments(ctx, seal.Filter{From: x.win.From, To: x.win.To})
		if err != nil {
			return err
		}
		for _, s := range segs {
			first, last := s.From, s.To
			if first.IsZero() || last.IsZero() {
				first, last = s.Opened, s.Opened
			}
			if !x.win.Overlaps(first, last) {
				continue // seal's filter is inclusive at the end; ours is not
			}
			cases[s.Case] = true
			switch s.State {
			case seal.StateSealed:
				x.sealed = append(x.sealed, s)
			default:
				x.omitted = append(x.omitted, OmittedJSON{Name: s.Name, Case: s.Case, State: string(s.State), Why: omittedWhy(s)})
			}
		}
	}
	for _, c := range x.cfg.Cases {
		end := c.EffectiveEnd()
		if c.ID == "" || c.Start.IsZero() || end.IsZero() || !c.Start.Before(x.win.To) || !end.After(x.win.From) {
			continue
		}
		if c.Covers(x.cfg.PC.ID) {
			cases[c.ID] = true
		}
	}
	x.cases = sortedKeys(cases)
	return nil
}

func omittedWhy(s seal.Segment) string {
	switch s.State {
	case seal.StateOpen:
		return "still being written by the running capture; export again once it is sealed (within a minute)"
	case seal.StateDeleted:
		return "deleted by traffic retention at " + s.EndedAt.UTC().Format(time.RFC3339)
	case seal.StateLost:
		return "lost: left unfinished by a crash or a failed write"
	}
	return "state " + string(s.State)
}

// checkIdentity opens the age header of every segment to include, so that
// a wrong key is reported before anything is recorded or written.
func (x *exporter) checkIdentity() error {
	for _, s := range x.sealed {
		p, err := x.store.Path(s.Name)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("segment %s: %w", s.Name, err)
		}
		_, err = age.Decrypt(f, x.ids...)
		f.Close()
		if err != nil {
			return identityError(s.Name, x.o.IdentityFile, err)
		}
	}
	return nil
}

// checkRecipient makes sure the identity is the head librarian's before
// anything is recorded or written: its public key is one of
// capture.recipients, or, when traffic sealed in the window is exported,
// it opened every such segment (checkIdentity), which shows it was among
// the recipients in force when that traffic was sealed (a key replaced
// since then still exports what was sealed to it). Without this, any age
// key would export the bookings of a window with no traffic.
func (x *exporter) checkRecipient() error {
	if len(x.sealed) > 0 || x.configuredRecipient() {
		return nil
	}
	return x.recipientError()
}

// configuredRecipient reports whether one of the identity's keys is in
// capture.recipients.
func (x *exporter) configuredRecipient() bool {
	for _, r := range x.cfg.Capture.Recipients {
		rcpt, err := age.ParseX25519Recipient(r)
		if err != nil {
			continue
		}
		for _, k := range x.keys {
			if k.Recipient().String() == rcpt.String() {
				return true
			}
		}
	}
	return false
}

func (x *exporter) recipientError() error {
	if len(x.cfg.Capture.Recipients) == 0 {
		return fmt.Errorf("capture.recipients in %q is empty, so no key can be shown to be the head librarian's: %w (put the head librarian's public key there first; carrel keygen prints it)",
			x.cfg.Path, ErrWrongIdentity)
	}
	have := make([]string, len(x.keys))
	for i, k := range x.keys {
		have[i] = k.Recipient().String()
	}
	return fmt.Errorf("the identity in %q (public key %s) is not one of capture.recipients (%s), and no traffic sealed to it overlaps the window: %w",
		x.o.IdentityFile, strings.Join(have, ", "), strings.Join(x.cfg.Capture.Recipients, ", "), ErrWrongIdentity)
}

// identities turns the keys seal reads into what age.Decrypt takes.
func identities(keys []*age.X25519Identity) []age.Identity {
	out := make([]age.Identity, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

// ErrWrongIdentity reports that the identity given cannot decrypt a sealed
// segment, or is not the head librarian's (not in capture.recipients).
var ErrWrongIdentity = errors.New("not the head librarian's key")

func identityError(segment, file string, err error) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return fmt.Errorf("segment %s was sealed to other keys than the one in %q: %w (use the head librarian's key that matches capture.recipients at the time)",
			segment, file, ErrWrongIdentity)
	}
	return fmt.Errorf("segment %s: opening its age header: %w", segment, err)
}

// Steps are the steps of an export, in order, as Options.Step sees them.
var Steps = []string{"start", "hold", "folder", "traffic", "bookings", "audit", "manifests", "rename", "in-place", "end", "signed"}

// enter begins a step: it reports it to Options.Step and stops the export
// when ctx was cancelled.
func (x *exporter) enter(ctx context.Context, step, doing string) error {
	x.step = doing
	if x.o.Step != nil {
		x.o.Step(ctx, step)
	}
	return ctx.Err()
}

// export does the work after the checks; it returns the finished bag.
func (x *exporter) export(ctx context.Context, out string) (*Result, error) {
	o := x.o
	x.step = "recording export.start"
	seq, err := x.log.Record(ctx, audit.Event{Kind: audit.ExportStart, Actor: o.Actor, Fields: []audit.Field{
		audit.Hash("order_sha256", o.Order.SHA256()), audit.Time("from", x.win.From), audit.Time("to", x.win.To),
		audit.Int("pcs", int64(len(o.PCs))),
	}})
	if err != nil {
		return nil, fmt.Errorf("recording export.start: %w", err)
	}
	x.startSeq = seq
	if err := x.pending.add(pendingState{StartSeq: &seq}); err != nil {
		return nil, err
	}
	if err := x.enter(ctx, "start", "placing the legal hold"); err != nil {
		return nil, err
	}
	if err := x.hold(ctx); err != nil {
		return nil, err
	}
	if err := x.enter(ctx, "hold", "creating the bundle folder"); err != nil {
		return nil, err
	}
	partial := x.pending.state.Partial
	if err := os.Mkdir(partial, 0o700); err != nil {
		return nil, fmt.Errorf("creating the temporary bundle folder: %w", err)
	}
	x.partial = partial
	id, err := folderID(partial)
	if err == nil {
		err = x.pending.add(pendingState{Folder: id})
	}
	if err != nil {
		return nil, err
	}
	x.bag = &bagWriter{root: partial, progress: newMeter(o.Progress, o.Now)}
	var total int64
	for _, s := range x.sealed {
		total += s.Size
	}
	// Files: each segment's copy and decrypted files, bookings, config,
	// custody; the audit files are added as they come.
	x.bag.progress.setTotals(len(x.sealed)*3+3, total)

	x.initCustody()
	if err := x.enter(ctx, "folder", "writing traffic"); err != nil {
		return nil, err
	}
	if err := x.writeSegments(ctx); err != nil {
		return nil, err
	}
	if err := x.enter(ctx, "traffic", "writing bookings"); err != nil {
		return nil, err
	}
	if err := x.writeBookings(); err != nil {
		return nil, err
	}
	x.step = "writing the config"
	if err := x.writeConfig(); err != nil {
		return nil, err
	}
	if err := x.enter(ctx, "bookings", "writing audit entries"); err != nil {
		return nil, err
	}
	if err := x.writeAudit(ctx); err != nil {
		return nil, err
	}
	if err := x.enter(ctx, "audit", "writing custody.json"); err != nil {
		return nil, err
	}
	cj, err := x.custody.encode()
	if err != nil {
		return nil, err
	}
	if _, err := x.bag.writeFile(payloadPath("custody.json"), cj); err != nil {
		return nil, err
	}
	x.step = "writing the BagIt files"
	if _, err := x.bag.writeFile("bagit.txt", []byte(bagitTxt)); err != nil {
		return nil, err
	}
	if _, err := x.bag.writeFile("bag-info.txt", encodeBagInfo(x.bagInfo())); err != nil {
		return nil, err
	}
	tagSum, err := x.bag.finish()
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out, Files: len(x.bag.payload), Bookings: len(x.booked), Segments: len(x.sealed),
		Omitted: len(x.omitted), Entries: x.custody.Audit.Entries, Cases: x.cases, TagSHA256: hex.EncodeToString(tagSum)}
	for _, f := range x.bag.payload {
		res.Bytes += f.Size
	}
	for _, s := range x.custody.Segments {
		res.InWindow += s.InWindow
	}
	if err := x.enter(ctx, "manifests", "moving the bundle into place"); err != nil {
		return nil, err
	}
	// The last moment to stop: ctx is not looked at after the rename.
	if err := x.enter(ctx, "rename", "moving the bundle into place"); err != nil {
		return nil, err
	}
	if err := testHookBeforeRename(); err != nil {
		return nil, err
	}
	if err := os.Rename(partial, out); err != nil {
		return nil, fmt.Errorf("moving the bundle into place: %w", err)
	}
	x.partial, x.out = "", out
	if err := syncDir(filepath.Dir(out)); err != nil {
		return nil, fmt.Errorf("syncing %s: %w", displayName(filepath.Dir(out)), err)
	}
	// From here the export finishes whatever ctx says; Step still gets
	// the export's ctx.
	outer := ctx
	ctx = context.WithoutCancel(ctx)
	x.enter(outer, "in-place", "recording export.end")
	res.EndSeq, err = x.log.Record(ctx, audit.Event{Kind: audit.ExportEnd, Actor: o.Actor, Fields: []audit.Field{
		audit.Hash("order_sha256", o.Order.SHA256()), audit.Hash("tagmanifest_sha256", tagSum),
		audit.Int("files", int64(res.Files)), audit.Int("bytes", res.Bytes),
	}})
	if err != nil {
		return nil, fmt.Errorf("recording export.end: %w", err)
	}
	x.endSeq = res.EndSeq
	x.enter(outer, "end", "writing the signature")
	if err := writeSignature(ctx, x.log, out, res.EndSeq, x.auditCP); err != nil {
		return nil, err
	}
	x.enter(outer, "signed", "finishing")
	if cp, err := x.log.Latest(ctx); err == nil {
		res.Checkpoint = cp.String()
	}
	x.bag.progress.done()
	return res, nil
}

// hold puts the segments to export on legal hold, and notes first in the
// marker which of them this export holds (not those an earlier export of
// the same order held), so that a failure, or Clean after a kill, lifts
// those and no others.
func (x *exporter) hold(ctx context.Context) error {
	if len(x.sealed) == 0 {
		return nil
	}
	names := make([]string, len(x.sealed))
	var placing []string
	for i, s := range x.sealed {
		names[i] = s.Name
		if !slices.Contains(s.Holds, x.o.Order.Ref) {
			placing = append(placing, s.Name)
		}
	}
	if len(placing) > 0 {
		if err := x.pending.add(pendingState{Holding: placing}); err != nil {
			return err
		}
		x.holding = placing
	}
	_, err := x.store.Hold(ctx, x.o.Order.Ref, names)
	return err
}

// writeSegments writes the sealed segments on every core: decrypting,
// hashing and restricting them is nearly all of an export's work.
func (x *exporter) writeSegments(ctx context.Context) error {
	out := make([]SegmentJSON, len(x.sealed))
	err := forEach(ctx, len(x.sealed), func(i int) error {
		var err error
		out[i], err = x.writeSegment(x.sealed[i])
		return err
	})
	if err != nil {
		return err
	}
	x.custody.Segments = out
	return nil
}

// fail cleans up after a failed or cancelled export and returns err,
// with anything the cleanup could not do: the folder holding decrypted
// traffic (the temporary one, or the bundle once in place) is removed, the
// failure recorded as export.fail, and the legal holds this export placed
// lifted. When all that is done the export's marker goes; else it stays
// for Clean. export.fail's reason is the step and the kind of failure,
// never the error text: that could quote a path, a segment's content or
// the order.
func (x *exporter) fail(err error) error {
	ctx := context.WithoutCancel(context.Background())
	var more []error
	for _, dir := range []string{x.partial, x.out} {
		if dir == "" {
			continue
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			more = append(more, fmt.Errorf("removing the unfinished bundle %s: %w", displayName(dir), rerr))
		}
	}
	if x.startSeq >= 0 && x.log != nil {
		kind := "error"
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			kind = "cancelled"
		case errors.Is(err, syscall.ENOSPC):
			kind = "no space left on the device"
		case errors.Is(err, fs.ErrPermission):
			kind = "permission denied"
		case errors.Is(err, seal.ErrCorrupt):
			kind = "a sealed segment does not match its index entry"
		}
		_, rerr := x.log.Record(ctx, audit.Event{Kind: audit.ExportFail, Actor: x.o.Actor, Fields: []audit.Field{
			audit.Hash("order_sha256", x.o.Order.SHA256()), audit.Text("why", x.step+": "+kind),
		}})
		if rerr != nil {
			more = append(more, fmt.Errorf("recording export.fail: %w", rerr))
		}
	}
	if len(x.holding) > 0 {
		if _, rerr := x.store.Release(ctx, x.o.Order.Ref, x.holding...); rerr != nil && !errors.Is(rerr, seal.ErrNoHold) {
			more = append(more, fmt.Errorf("lifting the legal holds it placed: %w", rerr))
		}
	}
	if x.pending != nil {
		if len(more) == 0 {
			if rerr := x.pending.done(); rerr != nil {
				more = append(more, rerr)
			}
		} else {
			x.pending.f.Close()
			more = append(more, errors.New("`carrel export clean` tries the rest again"))
		}
	}
	if len(more) > 0 {
		return fmt.Errorf("%w (and %w)", err, errors.Join(more...))
	}
	return err
}

// testHookBeforeRename lets tests fail an export at its last step.
var testHookBeforeRename = func() error { return nil }
