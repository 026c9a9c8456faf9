package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/carrel-lib/carrel/internal/netlab"
)

// Test packets are built with gopacket's serializer (allocation is fine in
// tests); the code under test never uses it.

var (
	pc4  = netip.MustParseAddr("10.200.7.2")
	srv4 = netip.MustParseAddr("10.200.7.1")
	pc6  = netip.MustParseAddr("fd00:200::2")
	srv6 = netip.MustParseAddr("fd00:200::1")
)

// frame builds an Ethernet frame carrying l4 (a *layers.TCP or *layers.UDP)
// and payload from src to dst.
func frame(t testing.TB, src, dst netip.Addr, l4 gopacket.SerializableLayer, payload []byte) []byte {
	t.Helper()
	f, err := netlab.Frame(src, dst, l4, payload)
	if err != nil {
		t.Fatalf("building a test frame: %v", err)
	}
	return f
}

func udpFrame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, payload []byte) []byte {
	return frame(t, src, dst, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload)
}

func tcpFrame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, seq uint32, payload []byte) []byte {
	return frame(t, src, dst, &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, ACK: true, PSH: true, Window: 64240}, payload)
}

// dnsQuery is a real DNS message made by gopacket's DNS layer.
func dnsQuery(t testing.TB, name string, qtype layers.DNSType, response bool, rcode layers.DNSResponseCode) []byte {
	t.Helper()
	d := &layers.DNS{ID: 0x1234, QR: response, RD: true, ResponseCode: rcode,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: qtype, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatalf("building a DNS message: %v", err)
	}
	return buf.Bytes()
}

// clientHello returns a real ClientHello record for serverName.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	hello := netlab.ClientHello(serverName)
	if len(hello) == 0 {
		t.Fatal("the TLS client wrote no ClientHello")
	}
	return hello
}

// memSink collects records in memory, for unit tests of the processor.
type memSink struct{ lines [][]byte }

func (m *memSink) Write(rec []byte, _ time.Time) error {
	m.lines = append(m.lines, append([]byte(nil), rec...))
	return nil
}
func (m *memSink) Due(time.Time) bool { return false }
func (m *memSink) Cut() error         { return nil }
func (m *memSink) Close() error       { return nil }

// testProcessor returns a metadata processor writing synchronously to sink.
func testProcessor(t testing.TB, sink Sink) *processor {
	t.Helper()
	var out *batcher
	out = newBatcher(func(b *batch) {
		if _, err := writeBatch(sink, b); err != nil {
			t.Errorf("writeBatch: %v", err)
		}
		out.recycle(b)
	})
	p, err := newProcessor(ModeMetadata, layers.LinkTypeEthernet, DefaultSnaplen, time.Minute, 1024, 42, out)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ci(ts time.Time, data []byte) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}
}

type netipAddr = netip.Addr
