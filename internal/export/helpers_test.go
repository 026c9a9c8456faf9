package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/seal"
)

// fixture is a data folder built with the real packages: bookings in a
// real bookings.db, traffic sealed by a real seal.Writer from real capture
// record encodings and pcapng blocks, and a real audit log that saw all of
// it, on a clock the test moves.
type fixture struct {
	t         testing.TB
	root      string
	dataDir   string
	cfgPath   string
	cfg       *config.Config
	identity  string // the head librarian's identity file
	recipient string

	mu  sync.Mutex
	now time.Time

	log      *audit.Log
	bookings *booking.Store
	store    *seal.Store
}

// at is the fixture's day; every time in the tests is on it.
func at(hhmm string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-03-02T"+hhmm+":00Z")
	if err != nil {
		panic(err)
	}
	return t
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// The cases of the fixture config: a metadata case over the whole day and a
// packets case in the late morning, both for pc-01.
const fixtureCases = `
[[case]]
id = "2026-03"
reason = "Repeated viewing of illegal content in the reading room"
category = "illegal-content"
declared_by = "Staff One"
approved_by = "Staff Two"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-01T09:00:00Z
end = 2026-03-10T20:00:00Z
pcs = ["pc-01"]
mode = "metadata"

[[case]]
id = "2026-03p"
reason = "Attack on the library network from a reading-room PC"
category = "attack-on-network"
declared_by = "Staff One"
approved_by = "Staff Three"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-02T11:30:00Z
end = 2026-03-02T12:30:00Z
pcs = ["*"]
mode = "packets"
snaplen = 256
`

// newFixture makes an empty data folder with a config, the head
// librarian's key and an audit log. cases is appended to the config.
func newFixture(t testing.TB, cases string) *fixture {
	t.Helper()
	return newFixtureAt(t, t.TempDir(), cases)
}

// newFixtureAt makes the fixture's files under root.
func newFixtureAt(t testing.TB, root, cases string) *fixture {
	t.Helper()
	f := &fixture{t: t, root: root, now: at("08:00")}
	f.dataDir = filepath.Join(f.root, "data")
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.identity = filepath.Join(f.root, "head-librarian.key")
	var err error
	if f.recipient, err = seal.WriteIdentityFile(f.identity, f.now); err != nil {
		t.Fatal(err)
	}
	f.cfgPath = filepath.Join(f.root, "carrel.toml")
	text := fmt.Sprintf(`version = 1
[pc]
id = "pc-01"
[library]
name = "Test Library"
responsible = "Head Librarian"
[storage]
data_dir = %q
[capture]
recipients = [%q]
`, f.dataDir, f.recipient) + cases
	if err := os.WriteFile(f.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if f.cfg, err = config.Load(f.cfgPath); err != nil {
		t.Fatal(err)
	}
	f.openStores()
	f.record(audit.ConfigAccepted, audit.Hash("sha256", f.cfg.SHA256[:]), audit.Token("source", "start"))
	return f
}

// openFixture opens the fixture made earlier under root.
func openFixture(t testing.TB, root string) *fixture {
	t.Helper()
	f := &fixture{t: t, root: root, now: at("08:00"), dataDir: filepath.Join(root, "data"),
		cfgPath: filepath.Join(root, "carrel.toml"), identity: filepath.Join(root, "head-librarian.key")}
	var err error
	if f.cfg, err = config.Load(f.cfgPath); err != nil {
		t.Fatal(err)
	}
	f.recipient = f.cfg.Capture.Recipients[0]
	f.openStores()
	return f
}

func (f *fixture) openStores() {
	f.t.Helper()
	var err error
	f.log, err = audit.OpenIn(f.dataDir, "carrel/pc-01", f.clock)
	if err != nil {
		f.t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, 32)
	if f.bookings, err = booking.Open(filepath.Join(f.dataDir, bookingsFile), booking.Options{Secret: secret, Now: f.clock}); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
	if f.bookings != nil {
		f.bookings.Close()
		f.bookings = nil
	}
	if f.log != nil {
		f.log.Close()
		f.log = nil
	}
}

func (f *fixture) record(kind audit.Kind, fields ...audit.Field) {
	f.t.Helper()
	if _, err := f.log.Record(context.Background(), audit.Event{Kind: kind, Actor: "service", Fields: fields}); err != nil {
		f.t.Fatal(err)
	}
}

// book records a booking of pc from start to end (end zero: still open).
func (f *fixture) book(pc, ref, start, end string, patron string) {
	f.t.Helper()
	ctx := context.Background()
	f.set(at(start))
	if _, err := f.bookings.Start(ctx, booking.StartRequest{PC: pc, Ref: ref, Patron: patron}); err != nil {
		f.t.Fatal(err)
	}
	if end == "" {
		return
	}
	f.set(at(end))
	if _, err := f.bookings.End(ctx, ref); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sealStore() *seal.Store {
	f.t.Helper()
	if f.store == nil {
		var err error
		f.store, err = seal.Open(context.Background(), f.dataDir, seal.Options{Recorder: f.log, Now: f.clock})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return f.store
}

// seg is one segment to seal: its records (JSON Lines or pcapng blocks)
// with their times.
type seg struct {
	records [][]byte
	times   []time.Time
}

// sealSegments seals each seg as one segment of caseID in format, the way
// the capture engine feeds a seal.Writer, and returns their index rows.
func (f *fixture) sealSegments(caseID string, format seal.Format, header []byte, segs ...seg) []seal.Segment {
	f.t.Helper()
	ctx := context.Background()
	store := f.sealStore()
	f.set(segs[0].times[0])
	f.record(audit.CaptureStart, audit.Token("case", caseID), audit.Token("mode", map[seal.Format]string{seal.JSONL: "metadata", seal.PCAPNG: "packets"}[format]))
	w, err := store.NewWriter(seal.WriterOptions{Case: caseID, Format: format, Header: header,
		Recipients: []string{f.recipient}, MinFree: -1, Now: f.clock})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range segs {
		for i, r := range s.records {
			f.set(s.times[i])
			if err := w.Write(r, s.times[i]); err != nil {
				f.t.Fatal(err)
			}
		}
		f.set(s.times[len(s.times)-1].Add(time.Second))
		if err := w.Cut(); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.record(audit.CaptureStop, audit.Token("case", caseID), audit.Token("why", "test"))
	all, err := store.Segments(ctx, seal.Filter{Case: caseID})
	if err != nil {
		f.t.Fatal(err)
	}
	return all[len(all)-len(segs):]
}

// jsonl returns a metadata segment of the given records.
func jsonl(recs ...capture.Record) seg {
	var s seg
	for i := range recs {
		s.records = append(s.records, capture.AppendJSON(nil, &recs[i]))
		s.times = append(s.times, recs[i].TS)
	}
	return s
}

var (
	pcAddr  = netip.MustParseAddr("10.0.0.23")
	dnsAddr = netip.MustParseAddr("10.0.0.1")
	webAddr = netip.MustParseAddr("192.0.2.80")
)

func dnsRec(ts time.Time, name string) capture.Record {
	return capture.Record{Kind: capture.KindDNS, TS: ts, Proto: 17, Src: pcAddr, SrcPort: 40000, Dst: dnsAddr, DstPort: 53, Name: name, QType: 1}
}

func tlsRec(ts time.Time, sni string) capture.Record {
	return capture.Record{Kind: capture.KindTLS, TS: ts, Proto: 6, Src: pcAddr, SrcPort: 50000, Dst: webAddr, DstPort: 443, SNI: sni}
}

func httpRec(ts time.Time, host string) capture.Record {
	return capture.Record{Kind: capture.KindHTTP, TS: ts, Proto: 6, Src: pcAddr, SrcPort: 50001, Dst: webAddr, DstPort: 80, Host: host}
}

func flowRec(first, last time.Time) capture.Record {
	return capture.Record{Kind: capture.KindFlow, TS: last, Proto: 6, Src: pcAddr, SrcPort: 50000, Dst: webAddr, DstPort: 443,
		First: first, Last: last, SrcPackets: 12, SrcBytes: 2345, DstPackets: 10, DstBytes: 45678}
}

// packets returns a packets-mode segment of UDP packets at the given times,
// each an Enhanced Packet Block after the segment header.
func packets(t testing.TB, times ...time.Time) seg {
	t.Helper()
	var s seg
	for i, ts := range times {
		s.records = append(s.records, epb(udpFrame(t, 40000+i, fmt.Appendf(nil, "packet %d", i)), ts))
		s.times = append(s.times, ts)
	}
	return s
}

// udpFrame is an Ethernet frame of a UDP packet from the PC to port 53.
func udpFrame(t testing.TB, sport int, payload []byte) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: pcAddr.AsSlice(), DstIP: dnsAddr.AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// epb encodes an Enhanced Packet Block for interface 0 with a nanosecond
// timestamp, as capture's packets mode writes them.
func epb(data []byte, ts time.Time) []byte {
	pad := (4 - len(data)%4) % 4
	n := 32 + len(data) + pad
	b := make([]byte, 0, n)
	le := binary.LittleEndian
	ns := uint64(ts.UnixNano())
	b = le.AppendUint32(b, 6)
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(ns>>32))
	b = le.AppendUint32(b, uint32(ns))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	b = append(b, make([]byte, pad)...)
	return le.AppendUint32(b, uint32(n))
}

// standard builds the fixture most tests use: bookings around and inside
// the window 10:00–12:00, two metadata segments overlapping it (one only
// partly), one outside it, and a packets segment straddling its end.
func standard(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, fixtureCases)
	f.set(at("09:00"))
	f.record(audit.CaseAccepted, audit.Token("case", "2026-03"), audit.Token("mode", "metadata"),
		audit.Time("start", at("09:00").Add(-24*time.Hour)), audit.Time("end", time.Date(2026, 3, 10, 20, 0, 0, 0, time.UTC)),
		audit.Time("notice_posted_at", at("08:00").Add(-24*time.Hour)))
	f.book("pc-01", "B-1", "09:30", "10:15", "4711")
	f.book("pc-01", "B-2", "10:30", "11:45", "")
	f.book("pc-02", "B-9", "10:40", "11:00", "") // another PC's id in the same register
	f.sealSegments("2026-03", seal.JSONL, nil,
		jsonl(dnsRec(at("09:55"), "early.example"), flowRec(at("09:58"), at("10:01")),
			tlsRec(at("10:02"), "secure.example"), httpRec(at("10:04"), "www.example")),
		jsonl(dnsRec(at("11:00"), "mid.example"), tlsRec(at("11:05"), "mid.example")),
		jsonl(dnsRec(at("13:00"), "late.example")))
	f.book("pc-01", "B-3", "11:50", "12:30", "")
	f.set(at("11:30"))
	f.record(audit.CaseAccepted, audit.Token("case", "2026-03p"), audit.Token("mode", "packets"),
		audit.Time("start", at("11:30")), audit.Time("end", at("12:30")), audit.Time("notice_posted_at", at("08:00").Add(-24*time.Hour)))
	f.sealSegments("2026-03p", seal.PCAPNG, capture.PcapngHeader(layers.LinkTypeEthernet, 256, "2026-03p"),
		packets(t, at("11:58"), at("11:59"), at("12:00"), at("12:01")))
	f.book("pc-01", "B-4", "13:00", "14:00", "")
	f.set(at("14:30"))
	f.book("pc-01", "B-5", "14:30", "", "") // still open
	f.set(at("15:00"))
	return f
}

// options is an export of the standard window to out.
func (f *fixture) options(out string) Options {
	return Options{
		Order:        Order{Ref: "RET-2026-0042", Court: "Retten i Testby", Requester: "Testby Police", Exporter: "Head Librarian"},
		Window:       Window{From: at("10:00"), To: at("12:00")},
		IdentityFile: f.identity, Out: out, Config: f.cfg, Version: "test", Actor: "uid:0", Host: "test-host", Now: f.clock,
	}
}

// export runs an export with the stores the fixture holds closed, as the
// service would have them open in another process: the export opens its own.
func (f *fixture) export(o Options) (*Result, error) {
	f.t.Helper()
	return Run(context.Background(), o)
}

// readTree returns every file under dir by slash path.
func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func sealFilterAll() seal.Filter { return seal.Filter{} }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func appendJSON(r capture.Record) []byte { return capture.AppendJSON(nil, &r) }
