package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// logSize returns the number of audit entries.
func (f *fixture) logSize() int64 {
	f.t.Helper()
	n, err := f.log.Size(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// kinds returns the kinds of the audit entries from seq on.
func (f *fixture) kinds(from int64) []string {
	f.t.Helper()
	es, err := f.log.Entries(context.Background(), audit.Query{From: from})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, string(e.Kind))
	}
	return out
}

// assertNothingLeft fails unless the folder holding out has nothing but
// what was there before: no bundle and no temporary folder.
func assertNothingLeft(t *testing.T, out string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), filepath.Base(out)) {
			t.Errorf("%s left behind after a failed export", e.Name())
		}
	}
}

func TestRunRefusesBadRequests(t *testing.T) {
	f := standard(t)
	out := filepath.Join(f.root, "bundle")
	other := filepath.Join(f.root, "other.key")
	otherRecipient, err := seal.WriteIdentityFile(other, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no order", func(o *Options) { o.Order.Ref = "" }, "missing order reference"},
		{"nothing", func(o *Options) { *o = Options{Config: o.Config} },
			"missing order reference, court, requester, exporter, identity file, output folder, window start, window end"},
		{"no court", func(o *Options) { o.Order.Court = " " }, "missing court"},
		{"no window end", func(o *Options) { o.Window.To = time.Time{} }, "missing window end"},
		{"empty window", func(o *Options) { o.Window.To = o.Window.From }, "the window ends (2026-03-02T10:00:00Z) before it starts"},
		{"line break in the court", func(o *Options) { o.Order.Court = "Retten\nBag-Software-Agent: forged" }, "court holds a control character"},
		{"PC with a space", func(o *Options) { o.PCs = []string{"pc 01"} }, `PC id "pc 01" is not a single word`},
		{"identity missing", func(o *Options) { o.IdentityFile = filepath.Join(f.root, "nope.key") }, "reading the head librarian's identity"},
		{"wrong identity", func(o *Options) { o.IdentityFile = other }, "was sealed to other keys than the one in"},
		{"any key, a window without traffic", func(o *Options) {
			o.IdentityFile, o.Window = other, Window{at("06:00"), at("07:00")}
		}, "(public key " + otherRecipient + ") is not one of capture.recipients (" + f.recipient + "), and no traffic sealed to it overlaps the window"},
		{"no capture.recipients", func(o *Options) {
			cfg := *o.Config
			cfg.Capture.Recipients = nil
			o.Config, o.Window = &cfg, Window{at("06:00"), at("07:00")}
		}, "capture.recipients in " + fmt.Sprintf("%q", f.cfgPath) + " is empty, so no key can be shown to be the head librarian's"},
		{"out exists", func(o *Options) { o.Out = f.dataDir }, "already exists: an export never writes into or over"},
		{"out's parent missing", func(o *Options) { o.Out = filepath.Join(f.root, "no", "bundle") }, "does not exist"},
		{"another PC", func(o *Options) { o.PCs = []string{"pc-07", "pc-08"} }, "this PC is pc-01, which the order does not name (pc-07, pc-08)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.logSize()
			o := f.options(out)
			tt.edit(&o)
			_, err := f.export(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v; want an error containing %q", err, tt.want)
			}
			if n := f.logSize(); n != before {
				t.Errorf("a refused export recorded %v", f.kinds(before))
			}
			assertNothingLeft(t, out)
		})
	}
	for _, w := range []Window{{at("10:00"), at("12:00")}, {at("06:00"), at("07:00")}} {
		_, err := f.export(func() Options { o := f.options(out); o.IdentityFile, o.Window = other, w; return o }())
		if !errors.Is(err, ErrWrongIdentity) {
			t.Errorf("Run of %v with another key = %v; want ErrWrongIdentity", w, err)
		}
	}
}

// TestRunKeyReplaced: after the head librarian's key was replaced in
// capture.recipients, the old key still exports the traffic sealed to it
// (which shows it was the key in force then), but no longer a window
// without traffic; the new key exports that.
func TestRunKeyReplaced(t *testing.T) {
	f := standard(t)
	newKey := filepath.Join(f.root, "new.key")
	newRecipient, err := seal.WriteIdentityFile(newKey, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	cfg := *f.cfg
	cfg.Capture.Recipients = []string{newRecipient}
	for i, tt := range []struct {
		identity string
		window   Window
		ok       bool
	}{
		{f.identity, Window{at("10:00"), at("12:00")}, true},
		{f.identity, Window{at("06:00"), at("07:00")}, false},
		{newKey, Window{at("06:00"), at("07:00")}, true},
		{newKey, Window{at("10:00"), at("12:00")}, false}, // it cannot open what was sealed before it
	} {
		o := f.options(filepath.Join(f.root, fmt.Sprintf("bundle-%d", i)))
		o.Config, o.IdentityFile, o.Window = &cfg, tt.identity, tt.window
		_, err := f.export(o)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrWrongIdentity) {
			t.Errorf("export %d (%s, %v) = %v; want success %v", i, filepath.Base(tt.identity), tt.window, err, tt.ok)
		}
	}
}

// TestRunFailureLeavesNoBundle injects a failure at several points, up to
// writing the signature after export.end, and checks that nothing is left
// at --out or beside it, that the failure is audited without its text,
// that the legal holds the export placed are lifted and those an earlier
// export of the same order placed are not, and that the export's marker
// is gone.
func TestRunFailureLeavesNoBundle(t *testing.T) {
	for _, at := range []string{".pcapng", bookingsCSV, ".proof", custodyFile, "bag-info.txt", "tagmanifest-sha512.txt", "rename", "signature"} {
		t.Run(at, func(t *testing.T) {
			f := standard(t)
			ctx := context.Background()
			// An earlier export of the same order held one of the segments.
			segs, _ := f.sealStore().Segments(ctx, sealFilterAll())
			if _, err := f.sealStore().Hold(ctx, "RET-2026-0042", []string{segs[0].Name}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(f.root, "bundle")
			injected := errors.New("injected failure")
			testHookFileWritten = func(rel string) error {
				if strings.HasSuffix(rel, at) {
					return injected
				}
				return nil
			}
			testHookBeforeRename = func() error {
				if at == "rename" {
					return injected
				}
				return nil
			}
			testHookSignature = func() error {
				if at == "signature" {
					return injected
				}
				return nil
			}
			defer func() {
				testHookFileWritten = func(string) error { return nil }
				testHookBeforeRename = func() error { return nil }
				testHookSignature = func() error { return nil }
			}()
			before := f.logSize()
			_, err := f.export(f.options(out))
			if !errors.Is(err, injected) {
				t.Fatalf("Run = %v; want the injected failure", err)
			}
			assertNothingLeft(t, out)
			kinds := strings.Join(f.kinds(before), " ")
			want := "export.start hold.placed export.fail hold.released"
			if at == "signature" {
				want = "export.start hold.placed export.end export.fail hold.released"
			}
			if kinds != want {
				t.Errorf("audit entries after a failed export: %s; want %s", kinds, want)
			}
			es, _ := f.log.Entries(ctx, audit.Query{Kinds: []audit.Kind{audit.ExportFail}})
			why, _ := es[len(es)-1].Value("why")
			if strings.Contains(why, "injected") || strings.Contains(why, "RET-2026") {
				t.Errorf("export.fail why = %q: it must not quote the error or the order", why)
			}
			segs, _ = f.sealStore().Segments(ctx, sealFilterAll())
			var held []string
			for _, s := range segs {
				if len(s.Holds) > 0 {
					held = append(held, s.Name)
				}
			}
			if len(held) != 1 || held[0] != segs[0].Name {
				t.Errorf("segments held after a failed export: %v; want only %s, which an earlier export held", held, segs[0].Name)
			}
			assertNoMarker(t, f.dataDir)
		})
	}
}

// assertNoMarker fails when an export's marker is left in the data folder.
func assertNoMarker(t *testing.T, dataDir string) {
	t.Helper()
	if m, _ := pendingMarkers(dataDir); len(m) > 0 {
		t.Errorf("markers of unfinished exports left: %v", m)
	}
}

// TestRunDiskFull exports onto a tiny tmpfs: the disk fills up halfway.
func TestRunDiskFull(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mount", "umount")
	f := standard(t)
	mnt := filepath.Join(f.root, "stick")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	out := filepath.Join(mnt, "bundle")
	before := f.logSize()
	_, err := f.export(f.options(out))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Run on a full disk = %v; want no space left", err)
	}
	assertNothingLeft(t, out)
	es, _ := f.log.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.ExportFail}, From: before})
	if len(es) != 1 {
		t.Fatalf("%d export.fail entries; want 1", len(es))
	}
	if why, _ := es[0].Value("why"); !strings.Contains(why, "no space left on the device") {
		t.Errorf("export.fail why = %q; want it to say the disk was full", why)
	}
}

// TestRunTamperedSegmentOnDisk: a sealed file changed on the PC after it
// was sealed is refused with the index's evidence, and no bundle is made.
func TestRunTamperedSegmentOnDisk(t *testing.T) {
	f := standard(t)
	name := "2026-03-20260302T110000.000Z-00000002.jsonl.age"
	flipByte(t, filepath.Join(f.dataDir, seal.DirName), name, -20)
	out := filepath.Join(f.root, "bundle")
	_, err := f.export(f.options(out))
	if !errors.Is(err, seal.ErrCorrupt) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Run with an altered segment = %v; want ErrCorrupt naming %s", err, name)
	}
	assertNothingLeft(t, out)
}

// TestRunHonestEmptyBundles: a window with nothing in it, and a window
// with bookings but no case, give bundles that say so and verify.
func TestRunHonestEmptyBundles(t *testing.T) {
	tests := []struct {
		name      string
		cases     string
		from, to  string
		bookings  int
		traffic   string
		wantCases string
	}{
		{"nothing at all", "", "06:00", "07:00", 0, "Carrel-Traffic: none: no misuse case covered this window on this PC, so no traffic was logged", "Carrel-Cases: none"},
		{"a case in force, no traffic", fixtureCases, "06:00", "07:00", 0, "Carrel-Traffic: none: no sealed traffic overlaps the window", "Carrel-Cases: 2026-03\n"},
		{"bookings, no case declared", "", "10:00", "12:00", 2, "Carrel-Traffic: none: no misuse case covered this window on this PC", "Carrel-Cases: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cases)
			f.book("pc-01", "B-1", "09:30", "10:15", "")
			f.book("pc-01", "B-2", "11:00", "11:30", "")
			f.set(at("15:00"))
			o := f.options(filepath.Join(f.root, "bundle"))
			o.Window = Window{at(tt.from), at(tt.to)}
			res, err := f.export(o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Bookings != tt.bookings || res.Segments != 0 {
				t.Errorf("Run = %d bookings, %d segments; want %d, 0", res.Bookings, res.Segments, tt.bookings)
			}
			files := readTree(t, o.Out)
			if info := string(files["bag-info.txt"]); !containsAll(info, tt.traffic, tt.wantCases) {
				t.Errorf("bag-info.txt:\n%s\nwant %q and %q", info, tt.traffic, tt.wantCases)
			}
			if n := strings.Count(string(files[bookingsCSV]), "\n"); n != 1+tt.bookings {
				t.Errorf("bookings.csv has %d lines; want a header and %d rows", n, tt.bookings)
			}
			if _, err := VerifyDir(o.Out, VerifyOptions{Identities: loadIDs(t, f.identity)}); err != nil {
				t.Errorf("VerifyDir = %v", err)
			}
		})
	}
}

// TestRunPCs: --pc filters the bookings; this PC's traffic comes along
// only when it is named.
func TestRunPCs(t *testing.T) {
	f := standard(t)
	for i, tt := range []struct {
		pcs  []string
		refs string
	}{
		{[]string{"pc-01"}, "B-1 B-2 B-3"},
		{[]string{"pc-01", "pc-02"}, "B-1 B-2 B-9 B-3"},
	} {
		o := f.options(filepath.Join(f.root, "bundle"+string(rune('a'+i))))
		o.PCs = tt.pcs
		if _, err := f.export(o); err != nil {
			t.Fatal(err)
		}
		csv := string(readTree(t, o.Out)[bookingsCSV])
		var refs []string
		for _, line := range strings.Split(strings.TrimSpace(csv), "\n")[1:] {
			refs = append(refs, strings.Split(line, ",")[1])
		}
		if got := strings.Join(refs, " "); got != tt.refs {
			t.Errorf("--pc %v: bookings %s; want %s", tt.pcs, got, tt.refs)
		}
		info := string(readTree(t, o.Out)["bag-info.txt"])
		if !strings.Contains(info, "Carrel-PCs-Requested: "+strings.Join(tt.pcs, " ")) {
			t.Errorf("bag-info.txt does not name the PCs asked for:\n%s", info)
		}
	}
}

// TestRunOmitsOpenSegment: a segment the running capture is still writing
// is not in the bundle; custody.json and bag-info.txt say why.
func TestRunOmitsOpenSegment(t *testing.T) {
	f := standard(t)
	w, err := f.sealStore().NewWriter(seal.WriterOptions{Case: "2026-03", Format: seal.JSONL,
		Recipients: []string{f.recipient}, MinFree: -1, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := dnsRec(at("11:30"), "open.example")
	f.set(rec.TS)
	if err := w.Write(appendJSON(rec), rec.TS); err != nil {
		t.Fatal(err)
	}
	f.set(at("15:00"))
	o := f.options(filepath.Join(f.root, "bundle"))
	res, err := f.export(o)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	files := readTree(t, o.Out)
	if res.Omitted != 1 || !strings.Contains(string(files[custodyFile]), "still being written") ||
		!strings.Contains(string(files["bag-info.txt"]), "1 segment(s) could not be included") {
		t.Errorf("Run omitted %d; custody.json:\n%s", res.Omitted, files[custodyFile])
	}
	if _, err := VerifyDir(o.Out, VerifyOptions{}); err != nil {
		t.Error(err)
	}
}

// TestRunOmitsDeletedSegment: a segment that traffic retention deleted is
// listed in custody.json with when, and the bundle says so.
func TestRunOmitsDeletedSegment(t *testing.T) {
	f := standard(t)
	caseEnd := func(id string) (time.Time, bool) { return at("12:30"), id == "2026-03p" }
	p, err := f.sealStore().Purge(context.Background(), at("23:00"), caseEnd, time.Hour)
	if err != nil || p.Deleted != 1 {
		t.Fatalf("Purge = %+v, %v; want the packets segment deleted", p, err)
	}
	o := f.options(filepath.Join(f.root, "bundle"))
	res, err := f.export(o)
	if err != nil {
		t.Fatal(err)
	}
	files := readTree(t, o.Out)
	if res.Segments != 2 || res.Omitted != 1 || !strings.Contains(string(files[custodyFile]), "deleted by traffic retention at 2026-03-02T23:00:00Z") {
		t.Errorf("Run = %d segments, %d omitted; custody.json:\n%s", res.Segments, res.Omitted, files[custodyFile])
	}
	if _, err := VerifyDir(o.Out, VerifyOptions{Identities: loadIDs(t, f.identity)}); err != nil {
		t.Error(err)
	}
}

// TestRunCancelled: a cancelled export (Ctrl-C) leaves nothing and is audited.
func TestRunCancelled(t *testing.T) {
	f := standard(t)
	ctx, cancel := context.WithCancel(context.Background())
	testHookFileWritten = func(rel string) error {
		cancel()
		return nil
	}
	defer func() { testHookFileWritten = func(string) error { return nil } }()
	out := filepath.Join(f.root, "bundle")
	o := f.options(out)
	_, err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v; want context.Canceled", err)
	}
	assertNothingLeft(t, out)
	es, _ := f.log.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.ExportFail}})
	if why, _ := es[len(es)-1].Value("why"); !strings.HasSuffix(why, "cancelled") {
		t.Errorf("export.fail why = %q; want cancelled", why)
	}
}
