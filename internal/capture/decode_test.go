package capture

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestProcessorRecords(t *testing.T) {
	sink := &memSink{}
	p := testProcessor(t, sink)
	ts := t0
	feed := func(data []byte) {
		ts = ts.Add(time.Millisecond)
		p.packet(data, ci(ts, data))
	}
	hello := clientHello(t, "split.example.test")
	if len(hello) < 200 {
		t.Fatalf("ClientHello of %d bytes is too short to split in three", len(hello))
	}
	dnsTCP := dnsQuery(t, "tcp.example.test", layers.DNSTypeTXT, false, 0)
	dnsTCP = append([]byte{0, byte(len(dnsTCP))}, dnsTCP...)

	feed(udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)))
	feed(udpFrame(t, srv6, 53, pc6, 40001, dnsQuery(t, "nope.example.test", layers.DNSTypeAAAA, true, layers.DNSResponseCodeNXDomain)))
	feed(tcpFrame(t, pc4, 51000, srv4, 443, 1000, clientHello(t, "secure.example.test")))
	feed(tcpFrame(t, pc6, 51001, srv6, 80, 5000, []byte("GET /private HTTP/1.1\r\nHost: www.example.test\r\nCookie: secret\r\n\r\n")))
	// A ClientHello in three segments, the second one sent twice.
	feed(tcpFrame(t, pc4, 51002, srv4, 443, 100, hello[:90]))
	feed(tcpFrame(t, pc4, 51002, srv4, 443, 190, hello[90:180]))
	feed(tcpFrame(t, srv4, 443, pc4, 51002, 9000, nil)) // an ACK from the server
	feed(tcpFrame(t, pc4, 51002, srv4, 443, 190, hello[90:180]))
	feed(tcpFrame(t, pc4, 51002, srv4, 443, 280, hello[180:]))
	// A hello with a gap (the middle segment lost): no guess is made.
	feed(tcpFrame(t, pc4, 51003, srv4, 443, 100, hello[:90]))
	feed(tcpFrame(t, pc4, 51003, srv4, 443, 280, hello[180:]))
	// DNS over TCP, split inside the question.
	feed(tcpFrame(t, pc4, 51004, srv4, 53, 1, dnsTCP[:15]))
	feed(tcpFrame(t, pc4, 51004, srv4, 53, 16, dnsTCP[15:]))
	p.flushFlows()
	p.out.flush()

	var got []string
	flows := 0
	for _, line := range sink.lines {
		r, err := DecodeJSON(line)
		if err != nil {
			t.Fatalf("DecodeJSON(%s): %v", line, err)
		}
		switch r.Kind {
		case KindDNS:
			got = append(got, "dns "+r.Name+" "+r.Src.String())
		case KindTLS:
			got = append(got, "tls "+r.SNI)
		case KindHTTP:
			got = append(got, "http "+r.Host)
		case KindFlow:
			flows++
			if r.SrcPort == 51002 && (r.SrcPackets != 4 || r.DstPackets != 1 || r.Src != pc4 || r.Dst != srv4) {
				t.Errorf("flow of the split hello = %+v; want 4 packets from %v and 1 from %v", r, pc4, srv4)
			}
		}
		if bytes.Contains(line, []byte("secret")) || bytes.Contains(line, []byte("private")) {
			t.Errorf("record %s carries payload beyond the Host header", line)
		}
	}
	want := []string{
		"dns www.example.test 10.200.7.2",
		"dns nope.example.test fd00:200::1",
		"tls secure.example.test",
		"http www.example.test",
		"tls split.example.test",
		"dns tcp.example.test 10.200.7.2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if flows != 7 {
		t.Errorf("flow records = %d; want 7 (one per 5-tuple)", flows)
	}
	if n := len(p.pool.free); n != reasmSlots {
		t.Errorf("free reassembly buffers after flush = %d; want all %d back", n, reasmSlots)
	}
}

func TestProcessorIdleFlows(t *testing.T) {
	sink := &memSink{}
	p := testProcessor(t, sink) // idle timeout: one minute
	a := udpFrame(t, pc4, 1000, srv4, 2000, []byte("x"))
	p.packet(a, ci(t0, a))
	p.tick(t0.Add(30 * time.Second).UnixNano())
	p.out.flush()
	if len(sink.lines) != 0 {
		t.Fatalf("after 30 s idle: %d records; want none yet", len(sink.lines))
	}
	p.tick(t0.Add(61 * time.Second).UnixNano())
	p.out.flush()
	if len(sink.lines) != 1 || !bytes.Contains(sink.lines[0], []byte(`"kind":"flow"`)) {
		t.Fatalf("after 61 s idle: records %q; want the one flow", sink.lines)
	}
	// A flow busy for longer than flowActive is reported anyway.
	for s := 0; s <= 130; s += 10 {
		ts := t0.Add(time.Duration(s) * time.Second)
		p.packet(a, ci(ts, a))
		p.tick(ts.UnixNano())
	}
	p.out.flush()
	if len(sink.lines) != 2 {
		t.Errorf("after a flow busy for 130 s: %d records; want it reported once by the active timeout", len(sink.lines)-1)
	}
}

// TestMalformedPackets feeds every truncation of real frames, and random
// bytes, through the decode path: none may panic, and broken headers are
// counted as errors.
func TestMalformedPackets(t *testing.T) {
	frames := [][]byte{
		udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)),
		udpFrame(t, pc6, 40000, srv6, 53, dnsQuery(t, "v6.example.test", layers.DNSTypeAAAA, false, 0)),
		tcpFrame(t, pc4, 51000, srv4, 443, 1, clientHello(t, "secure.example.test")),
		tcpFrame(t, pc4, 51000, srv4, 80, 1, []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")),
	}
	p := testProcessor(t, &memSink{})
	for _, f := range frames {
		for n := 0; n <= len(f); n++ {
			d := f[:n]
			p.packet(d, ci(t0, d))
		}
	}
	if p.st.errors == 0 {
		t.Errorf("errors counted over all truncations = 0; want > 0")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := make([]byte, rng.IntN(200))
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		if len(d) > 14 && rng.IntN(2) == 0 { // make many of them IPv4 or IPv6 past Ethernet
			d[12], d[13] = 0x08, 0x00
			if rng.IntN(2) == 0 {
				d[12], d[13] = 0x86, 0xdd
			}
		}
		p.packet(d, ci(t0, d))
	}
	p.flushFlows()
}

// TestDecodeAllocs: the decode path (parse, flow update, extraction,
// encoding) allocates nothing per packet for DNS, TLS and HTTP packets.
func TestDecodeAllocs(t *testing.T) {
	p := testProcessor(t, discardSink{})
	pkts := [][]byte{
		udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)),
		tcpFrame(t, pc4, 51000, srv4, 443, 1, clientHello(t, "secure.example.test")),
		tcpFrame(t, pc6, 51001, srv6, 80, 1, []byte("GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n")),
	}
	for _, d := range pkts { // warm up: flows exist, batches are in use
		p.packet(d, ci(t0, d))
	}
	for _, d := range pkts {
		c := ci(t0, d)
		if n := testing.AllocsPerRun(1000, func() { p.packet(d, c) }); n != 0 {
			t.Errorf("allocations per packet (% x…) = %v; want 0", d[:20], n)
		}
	}
	// New flows, and flow records swept out to the sink, allocate
	// nothing either.
	fresh := make([][]byte, 1001)
	for i := range fresh {
		fresh[i] = udpFrame(t, pc4, uint16(10000+i), srv4, 9999, []byte("x"))
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		d := fresh[i]
		i++
		p.packet(d, ci(t0.Add(time.Duration(i)*time.Second), d))
		p.tick(t0.Add(time.Hour).UnixNano())
		p.nextSweep = 0
	}); n != 0 {
		t.Errorf("allocations per new flow and sweep = %v; want 0", n)
	}
	if p.st.packets < 1000 {
		t.Fatalf("only %d packets went through", p.st.packets)
	}
}

type discardSink struct{}

func (discardSink) Write([]byte, time.Time) error { return nil }
func (discardSink) Due(time.Time) bool            { return false }
func (discardSink) Cut() error                    { return nil }
func (discardSink) Close() error                  { return nil }

// TestPacketsModeReadsBack: packets mode writes a standalone pcapng that
// pcapgo reads back with the packets cut to the snap length.
func TestPacketsModeReadsBack(t *testing.T) {
	sink := &memSink{}
	var out *batcher
	out = newBatcher(func(b *batch) { writeBatch(sink, b); out.recycle(b) })
	p, err := newProcessor(ModePackets, layers.LinkTypeEthernet, 100, time.Minute, 16, 1, out)
	if err != nil {
		t.Fatal(err)
	}
	in := [][]byte{
		udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)),
		tcpFrame(t, pc4, 51000, srv4, 443, 1, clientHello(t, "secure.example.test")),
	}
	for i, d := range in {
		p.packet(d, ci(t0.Add(time.Duration(i)*time.Microsecond), d))
	}
	out.flush()
	file := PcapngHeader(layers.LinkTypeEthernet, 100, "case-7")
	for _, l := range sink.lines {
		file = append(file, l...)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(file), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("pcapgo.NewNgReader(our pcapng): %v", err)
	}
	for i, want := range in {
		data, c, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		wantData := want[:min(len(want), 100)]
		if !bytes.Equal(data, wantData) || c.Length != len(want) || !c.Timestamp.Equal(t0.Add(time.Duration(i)*time.Microsecond)) {
			t.Errorf("packet %d = %d bytes of %d at %v; want %d of %d at %v", i, len(data), c.Length, c.Timestamp,
				len(wantData), len(want), t0.Add(time.Duration(i)*time.Microsecond))
		}
	}
	if _, _, err := r.ReadPacketData(); err == nil {
		t.Errorf("a third packet was read; want EOF")
	}
}

func TestUnsupportedLinkType(t *testing.T) {
	_, err := newProcessor(ModeMetadata, layers.LinkTypeIEEE802_11, 0, time.Minute, 16, 1, newBatcher(func(*batch) {}))
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("newProcessor(802.11) = %v; want a not-supported error", err)
	}
}

// TestFlowDirection: a flow picked up mid-way (after a rotation) keeps
// the client as its src.
func TestFlowDirection(t *testing.T) {
	synack := frame(t, srv4, pc4, &layers.TCP{SrcPort: 443, DstPort: 51010, SYN: true, ACK: true, Window: 100}, nil)
	tests := []struct {
		name  string
		first []byte
	}{
		{"server data first", tcpFrame(t, srv4, 443, pc4, 51010, 1, []byte("x"))},
		{"SYN-ACK first", synack},
		{"DNS answer first", udpFrame(t, srv4, 53, pc4, 51010, []byte("x"))},
		{"client first", tcpFrame(t, pc4, 51010, srv4, 443, 1, []byte("x"))},
	}
	for _, tt := range tests {
		sink := &memSink{}
		p := testProcessor(t, sink)
		p.packet(tt.first, ci(t0, tt.first))
		p.flushFlows()
		p.out.flush()
		r, err := DecodeJSON(sink.lines[0])
		if err != nil {
			t.Fatal(err)
		}
		if r.Src != pc4 || r.SrcPort != 51010 || r.Dst != srv4 {
			t.Errorf("%s: flow %v:%d -> %v:%d; want the pc as src", tt.name, r.Src, r.SrcPort, r.Dst, r.DstPort)
		}
	}
}
