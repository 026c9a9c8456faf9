package report_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/daemon"
	"github.com/carrel-lib/carrel/internal/export"
	"github.com/carrel-lib/carrel/internal/report"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// The scripted year: the real service (daemon.Run) on an injected clock,
// driven from 2025-01-01 to the report's making on 2026-01-05. It runs in a
// child process in a network namespace of its own, so that the capture of
// its misuse case opens a real capture socket on a loopback interface that
// carries no traffic: capture.start and capture.stop are the service's
// own, and their counts are the same on every run.
var (
	yearStart = time.Date(2025, 1, 1, 7, 0, 0, 0, time.UTC)
	madeAt    = time.Date(2026, 1, 5, 11, 0, 0, 0, time.UTC)
	// The review's period: the calendar year 2025 in Copenhagen.
	copenhagen = mustZone("Europe/Copenhagen")
	period     = report.Period{From: time.Date(2025, 1, 1, 0, 0, 0, 0, copenhagen), To: time.Date(2026, 1, 1, 0, 0, 0, 0, copenhagen)}
	// The week the PC stood switched off (summer closure).
	closedFrom, closedTo = time.Date(2025, 7, 14, 6, 0, 0, 0, time.UTC), time.Date(2025, 7, 21, 6, 0, 0, 0, time.UTC)
	caseStart, caseEnd   = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC), time.Date(2025, 3, 17, 8, 0, 0, 0, time.UTC)
	refusedCaseAt        = time.Date(2025, 9, 1, 9, 30, 0, 0, time.UTC)
	badConfigAt          = time.Date(2025, 10, 6, 11, 30, 0, 0, time.UTC)
	exportAt             = time.Date(2025, 4, 2, 10, 30, 0, 0, time.UTC)
	lookupAt             = time.Date(2025, 11, 10, 13, 0, 0, 0, time.UTC)
	// The PC is restarted for updates; its witness cosigns the checkpoint
	// it signed at the stop.
	updateRestartAt = time.Date(2025, 12, 10, 7, 0, 0, 0, time.UTC)
	orderRef        = "BS-1234/2025"
	// The library's two witnesses: its own (w1), which cosigns every
	// checkpoint the PC signs at a stop, and a neighbouring
	// municipality's (w2), which cosigns in March and from the summer
	// closure on refuses the log's key (its operator was given another),
	// a refusal no one acknowledges.
	witness1 = report.NewTestWitness("witness.sonderby.example/w1")
	witness2 = report.NewTestWitness("witness.nabokommune.example/w2")
)

// The witnesses' names in the config.
const witness1Name, witness2Name = "sonderby-w1", "nabo-w2"

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

const fixtureEnv = "CARREL_REPORT_FIXTURE_OUT"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fixtureEnv); dir != "" {
		start := time.Now()
		if err := scriptedYear(dir); err != nil {
			fmt.Fprintln(os.Stderr, "scripted year:", err)
			os.Exit(1)
		}
		fmt.Printf("scripted year took %s\n", time.Since(start).Round(time.Millisecond))
		os.Exit(0)
	}
	code := m.Run()
	if fix.dir != "" {
		os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

// fix is the fixture data folder, built once per test binary.
var fix struct {
	once sync.Once
	dir  string
	out  string
	err  error
}

// fixture returns the folder holding the scripted year's config
// (carrel.toml) and data folder (data/).
func fixture(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t) // a network namespace of its own for the capture
	fix.once.Do(func() {
		// A fixed-length path, so that sizes of what records the path (the
		// exported config) are the same on every run; on tmpfs when there
		// is one, where the year's fsyncs cost nothing.
		base := "/dev/shm"
		if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
			base = os.TempDir()
		}
		var rnd [8]byte
		rand.Read(rnd[:])
		fix.dir = filepath.Join(base, "carrel-report-fixture-"+hex.EncodeToString(rnd[:]))
		if fix.err = os.Mkdir(fix.dir, 0o700); fix.err != nil {
			return
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fixtureEnv+"="+fix.dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		out, err := cmd.CombinedOutput()
		fix.out = string(out)
		if err != nil {
			fix.err = fmt.Errorf("building the fixture: %v\n%s", err, out)
		}
	})
	if fix.err != nil {
		t.Fatal(fix.err)
	}
	return fix.dir
}

// facts gathers the fixture's facts at the moment of making.
func facts(t *testing.T) *report.Facts {
	t.Helper()
	dir := fixture(t)
	cfg, err := config.Load(filepath.Join(dir, "carrel.toml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := report.Gather(context.Background(), report.Input{Config: cfg, Now: madeAt, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// clock is the service's injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// year is the state of the script.
type year struct {
	dir, cfgPath, dataDir string
	recipient, identity   string
	clock                 *clock
	cases                 string // [[case]] tables in the config
	purge                 chan chan struct{}
	cancel                context.CancelFunc
	done                  chan error
	client                *api.Client
	bookings              int
}

func scriptedYear(dir string) error {
	if err := loopbackUp(); err != nil {
		return err
	}
	idPath, err := filepath.Abs(filepath.Join("testdata", "fixture-identity.txt"))
	if err != nil {
		return err
	}
	ids, err := seal.LoadIdentities(idPath)
	if err != nil {
		return err
	}
	y := &year{dir: dir, cfgPath: filepath.Join(dir, "carrel.toml"), dataDir: filepath.Join(dir, "data"),
		recipient: ids[0].Recipient().String(), identity: idPath, clock: &clock{t: yearStart}}
	if err := y.writeConfig(""); err != nil {
		return err
	}
	if err := y.start(); err != nil {
		return err
	}
	ctx := context.Background()
	for now := yearStart; !now.After(madeAt); now = now.Add(time.Hour) {
		y.clock.set(now)
		local := now.In(copenhagen)
		switch {
		case now.Equal(closedFrom):
			if err := y.stopWitnessed(witness1); err != nil {
				return err
			}
			if err := y.refuse(); err != nil {
				return err
			}
			continue
		case now.After(closedFrom) && now.Before(closedTo):
			continue // switched off: no runs, no bookings
		case now.Equal(closedTo):
			if err := y.start(); err != nil {
				return err
			}
		case now.Equal(caseStart.Add(-24 * time.Hour)):
			// The case is declared the day before it starts.
			y.cases = caseTable("2025-03", "metadata", "Anne Berg", "Bo Holm", caseStart.Add(-22*time.Hour), caseStart, caseEnd)
			if err := y.reload(audit.CaseAccepted); err != nil {
				return err
			}
		case now.Equal(caseStart), now.Equal(caseEnd):
			// The PC is restarted in the morning; the service judges the
			// case afresh at start (capture on at the case's start, off
			// after its end).
			if err := y.stopWitnessed(witness1, witness2); err != nil {
				return err
			}
			if now.Equal(caseEnd) {
				// The capture engine saw no packets on its silent
				// interface; the case's evidence is sealed by the real
				// traffic store, fed the records a capture would have made.
				if err := y.seal(); err != nil {
					return err
				}
			}
			if err := y.start(); err != nil {
				return err
			}
			if now.Equal(caseStart) {
				if err := y.waitFor(audit.CaptureStart, 1); err != nil {
					return err
				}
			}
		case now.Equal(updateRestartAt):
			if err := y.stopWitnessed(witness1); err != nil {
				return err
			}
			if err := y.start(); err != nil {
				return err
			}
		case now.Equal(exportAt.Truncate(time.Hour)):
			if err := y.export(ctx); err != nil {
				return err
			}
		case now.Equal(refusedCaseAt.Truncate(time.Hour)):
			// A second case whose approver is its declarer: refused (G2).
			y.cases += caseTable("2025-09", "packets", "Carl Dahl", "Carl Dahl", refusedCaseAt, refusedCaseAt.Add(24*time.Hour), refusedCaseAt.Add(10*24*time.Hour))
			if err := y.reload(audit.CaseRejected); err != nil {
				return err
			}
		case now.Equal(lookupAt):
			// A patron's access request: staff look up one card's bookings.
			if _, err := y.client.ByPatron(ctx, "0000000004"); err != nil {
				return fmt.Errorf("patron look-up: %w", err)
			}
		case now.Equal(badConfigAt.Truncate(time.Hour)):
			if err := y.writeConfig("retention = \"forever\"\n"); err != nil {
				return err
			}
			if err := y.waitFor(audit.ConfigRejected, 1); err != nil {
				return err
			}
			if err := y.writeConfig(""); err != nil {
				return err
			}
		}
		if err := y.runRetention(); err != nil {
			return err
		}
		if err := y.book(ctx, local); err != nil {
			return err
		}
	}
	if err := y.stopWitnessed(witness1); err != nil {
		return err
	}
	// w2 still refuses at the making of the report: the same refusal
	// again, which records no new entry, only the witnesses' state (the
	// service's pushes meanwhile left it whatever the script's unreachable
	// witnesses made of it).
	return y.refuse()
}

// stopWitnessed stops the service and has ws cosign the checkpoint it
// signed at the stop.
func (y *year) stopWitnessed(ws ...*report.TestWitness) error {
	if err := y.stop(); err != nil {
		return err
	}
	return y.witness(ws...)
}

// openLog opens the audit log as the service would, on the script's
// clock; the service is stopped.
func (y *year) openLog() (*audit.Log, error) {
	return audit.OpenIn(y.dataDir, "carrel/pc-fixture", y.clock.Now)
}

// witness has each of ws cosign the checkpoint the service signed at its
// stop, at the script's time, and stores the cosignatures as the service
// stores a witness's answer. The service itself cannot reach the
// witnesses (Options.WitnessDial): which of its checkpoints a real
// witness would cosign depends on timing, and the goldens must not.
func (y *year) witness(ws ...*report.TestWitness) error {
	return y.atLatest(func(ctx context.Context, l *audit.Log, cp audit.Checkpoint) error {
		for _, w := range ws {
			line, err := w.Cosign(cp, y.clock.Now())
			if err != nil {
				return err
			}
			k, err := audit.ParseWitnessKey(w.Key)
			if err != nil {
				return err
			}
			name := witness1Name
			if w == witness2 {
				name = witness2Name
			}
			if _, err := l.AddCosignatures(ctx, name, k, cp, []string{line}); err != nil {
				return err
			}
		}
		return nil
	})
}

// refuse records w2's refusal of the log's key, as the service records a
// 403 from a witness.
func (y *year) refuse() error {
	return y.atLatest(func(ctx context.Context, l *audit.Log, cp audit.Checkpoint) error {
		_, _, err := l.WitnessRefused(ctx, witness2Name, witness2.Key, audit.Refusal{Why: audit.RefusedKeyNotTrusted,
			Detail: "the witness knows this log's origin but not its key (403)", LogSize: cp.Size})
		return err
	})
}

// atLatest opens the log (the service is stopped) and calls f with the
// latest checkpoint the service signed.
func (y *year) atLatest(f func(context.Context, *audit.Log, audit.Checkpoint) error) error {
	l, err := y.openLog()
	if err != nil {
		return err
	}
	defer l.Close()
	ctx := context.Background()
	cp, err := l.Latest(ctx)
	if err != nil {
		return err
	}
	return f(ctx, l, cp)
}

// book plays a library day: three bookings between 10 and 18 on opening
// days (Monday to Saturday), every second one with a patron card.
func (y *year) book(ctx context.Context, local time.Time) error {
	if local.Weekday() == time.Sunday {
		return nil
	}
	h := local.Hour()
	if h != 10 && h != 12 && h != 13 && h != 15 && h != 16 && h != 18 {
		return nil
	}
	ref := fmt.Sprintf("b-%s-%d", local.Format("20060102"), (h-10)/3)
	if h == 12 || h == 15 || h == 18 {
		_, err := y.client.End(ctx, ref)
		return err
	}
	planned := local.Add(2 * time.Hour)
	req := api.StartRequest{Ref: ref, PlannedEnd: &planned}
	if y.bookings%2 == 0 {
		req.Patron = fmt.Sprintf("00%08d", y.bookings%97)
	}
	y.bookings++
	_, err := y.client.Start(ctx, req)
	return err
}

func (y *year) runRetention() error {
	done := make(chan struct{})
	select {
	case y.purge <- done:
	case err := <-y.done:
		return fmt.Errorf("service stopped: %v", err)
	}
	<-done
	return nil
}

func caseTable(id, mode, declared, approved string, notice, start, end time.Time) string {
	return fmt.Sprintf(`
[[case]]
id = %q
reason = "Viewing of illegal content reported by staff"
category = "illegal-content"
declared_by = %q
approved_by = %q
notice_posted_at = %s
start = %s
end = %s
pcs = ["pc-fixture"]
mode = %q
`, id, declared, approved, notice.Format(time.RFC3339), start.Format(time.RFC3339), end.Format(time.RFC3339), mode)
}

func (y *year) writeConfig(extraBooking string) error {
	doc := fmt.Sprintf(`version = 1

[pc]
id = "pc-fixture"

[library]
name = "Sønderby Bibliotek"
responsible = "Head librarian Ida Lund"
contact = "biblioteket@sonderby.example"
rules = "https://sonderby.example/regler"

[storage]
data_dir = %q

[booking]
retention = "28d"
api_socket = %q
client_group = ""
%s
[audit]
witnesses = [
  {name = %q, url = "https://witness.sonderby.example", key = %q},
  {name = %q, url = "https://witness.nabokommune.example", key = %q},
]

[capture]
interface = "lo"
recipients = [%q]
traffic_retention = "30d"
%s`, y.dataDir, filepath.Join(y.dataDir, "api.sock"), extraBooking, witness1Name, witness1.Key, witness2Name, witness2.Key, y.recipient, y.cases)
	tmp := y.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, y.cfgPath)
}

// reload writes the config and waits for the service's verdict on it.
func (y *year) reload(want audit.Kind) error {
	n, err := y.count(want)
	if err != nil {
		return err
	}
	if err := y.writeConfig(""); err != nil {
		return err
	}
	return y.waitFor(want, n+1)
}

func (y *year) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	y.cancel, y.done, y.purge = cancel, make(chan error, 1), make(chan chan struct{})
	verdicts := 0
	for _, k := range []audit.Kind{audit.CaseAccepted, audit.CaseRejected} {
		if _, err := os.Stat(filepath.Join(y.dataDir, audit.DBFile)); err != nil {
			break
		}
		c, err := y.count(k)
		if err != nil {
			cancel()
			return err
		}
		verdicts += c
	}
	ready := make(chan struct{})
	go func() {
		y.done <- daemon.Run(ctx, daemon.Options{ConfigPath: y.cfgPath, Version: "test", Now: y.clock.Now, Ready: ready,
			Purge: y.purge, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), WitnessDial: noWitness})
	}()
	select {
	case <-ready:
	case err := <-y.done:
		return fmt.Errorf("service did not start: %v", err)
	}
	y.client = api.NewClient(filepath.Join(y.dataDir, "api.sock"))
	// The capture controller judges every case afresh at start, after its
	// traffic retention run: wait for its verdicts, so that what it records
	// happens at this moment of the script and not a later one.
	if n := strings.Count(y.cases, "[[case]]"); n > 0 {
		return y.waitVerdicts(verdicts + n)
	}
	return nil
}

// waitVerdicts waits until the log holds n case verdicts.
func (y *year) waitVerdicts(n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		a, err := y.count(audit.CaseAccepted)
		if err != nil {
			return err
		}
		r, err := y.count(audit.CaseRejected)
		if err != nil {
			return err
		}
		if a+r >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %d case verdicts after 2 minutes (%d)", n, a+r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (y *year) stop() error {
	y.cancel()
	return <-y.done
}

// count counts the audit entries of kind k.
func (y *year) count(k audit.Kind) (int, error) {
	l, err := audit.Open(filepath.Join(y.dataDir, audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	es, err := l.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{k}})
	return len(es), err
}

// waitFor waits until the audit log holds n entries of kind k. The
// deadline only stops a hang.
func (y *year) waitFor(k audit.Kind, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := y.count(k)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %d %s entries after 2 minutes (%d)", n, k, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seal writes the case's evidence through the real traffic store: three
// one-day segments of DNS, TLS and flow records.
func (y *year) seal() error {
	log, err := audit.OpenIn(y.dataDir, "carrel/pc-fixture", y.clock.Now)
	if err != nil {
		return err
	}
	defer log.Close()
	st, err := seal.Open(context.Background(), y.dataDir, seal.Options{Recorder: log, Now: y.clock.Now})
	if err != nil {
		return err
	}
	defer st.Close()
	pc, srv := netip.MustParseAddr("10.0.0.23"), netip.MustParseAddr("192.0.2.80")
	for day := 2; day <= 6; day += 2 {
		w, err := st.NewWriter(seal.WriterOptions{Case: "2025-03", Format: seal.JSONL, Recipients: []string{y.recipient}, Now: y.clock.Now})
		if err != nil {
			return err
		}
		base := caseStart.Add(time.Duration(day)*24*time.Hour + 3*time.Hour)
		for i := range 40 {
			ts := base.Add(time.Duration(i) * time.Minute)
			recs := []capture.Record{
				{Kind: capture.KindDNS, TS: ts, Proto: 17, Src: pc, SrcPort: 40000 + uint16(i), Dst: srv, DstPort: 53,
					Name: fmt.Sprintf("site-%02d.example", i%7), QType: 1},
				{Kind: capture.KindTLS, TS: ts.Add(time.Second), Proto: 6, Src: pc, SrcPort: 50000 + uint16(i), Dst: srv, DstPort: 443,
					SNI: fmt.Sprintf("site-%02d.example", i%7)},
				{Kind: capture.KindFlow, TS: ts.Add(30 * time.Second), Proto: 6, Src: pc, SrcPort: 50000 + uint16(i), Dst: srv, DstPort: 443,
					First: ts.Add(time.Second), Last: ts.Add(30 * time.Second), SrcPackets: 12, SrcBytes: 1800, DstPackets: 20, DstBytes: 24000},
			}
			for j := range recs {
				if err := w.Write(capture.AppendJSON(nil, &recs[j]), recs[j].TS); err != nil {
					return err
				}
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// export answers a court order for part of the case's window, as `carrel
// export` does, which puts its segments on legal hold.
func (y *year) export(ctx context.Context) error {
	cfg, err := config.Load(y.cfgPath)
	if err != nil {
		return err
	}
	out := filepath.Join(y.dir, "bundle")
	_, err = export.Run(ctx, export.Options{
		Order:        export.Order{Ref: orderRef, Court: "Retten i Sønderby", Requester: "Sydjyllands Politi", Exporter: "Ida Lund"},
		Window:       export.Window{From: caseStart.Add(4 * 24 * time.Hour), To: caseStart.Add(5 * 24 * time.Hour)},
		IdentityFile: y.identity, Out: out, Config: cfg, Version: "test", Actor: "uid:0", Host: "fixture-host", Now: y.clock.Now,
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(out)
}

// noWitness is the service's way to its witnesses in the scripted year:
// none (see year.witness).
func noWitness(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("the scripted year's witnesses are reached only by the script")
}

// loopbackUp brings up lo in the new network namespace: a capture socket
// on a link that is down fails at its first read.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading lo's flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// normalise replaces what differs between two builds of the fixture (the
// data folder's path, random keys and the config's digest, which covers
// the path) with fixed words, so that goldens compare what the reports say.
func normalise(t *testing.T, f *report.Facts, b []byte) []byte {
	t.Helper()
	s := string(b)
	s = strings.ReplaceAll(s, filepath.Dir(f.Config.Storage.DataDir), "<FIXTURE>")
	sum := hex.EncodeToString(f.Config.SHA256[:])
	s = strings.ReplaceAll(s, sum, "<config-sha256>")
	s = strings.ReplaceAll(s, sum[:12], "<config>")
	for _, e := range f.Entries {
		if e.Kind == audit.KeyCreated {
			fp, _ := e.Value("fingerprint")
			key, _ := e.Value("key")
			s = strings.ReplaceAll(s, fp, "<"+key+"-fingerprint>")
			s = strings.ReplaceAll(s, fp[:12], "<"+key+">")
		}
	}
	// How many checkpoints the service signed depends on how its own
	// records and the capture controller's interleave (each signs when the
	// log grew); the entries they cover do not.
	s = checkpointCount.ReplaceAllString(s, "${1}<n>")
	return []byte(s)
}

var checkpointCount = regexp.MustCompile(`("checkpoints": |Signed checkpoints: +|Signerede kontrolpunkter: +|kontrolpunkter</th><td>|checkpoints</th><td>)\d+`)

var _ = bytes.Equal
var _ = age.ParseX25519Identity
