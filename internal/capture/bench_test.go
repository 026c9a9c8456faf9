package capture

import (
	"bytes"
	"os"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// Micro-benchmarks of the decode path, one packet kind each; see
// BENCHMARKS.md (Capture) for the figures and the live comparison.

func benchPacket(b *testing.B, data []byte) {
	p := testProcessor(b, discardSink{})
	c := ci(t0, data)
	p.packet(data, c)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.packet(data, c)
	}
}

func BenchmarkDecodeUDP64(b *testing.B) {
	benchPacket(b, udpFrame(b, pc4, 40000, srv4, 9, make([]byte, 18)))
}

func BenchmarkDecodeTCP1514(b *testing.B) {
	benchPacket(b, tcpFrame(b, srv4, 443, pc4, 51000, 1, make([]byte, 1460)))
}

func BenchmarkDecodeDNS(b *testing.B) {
	benchPacket(b, udpFrame(b, pc4, 40000, srv4, 53, dnsQuery(b, "www.example.test", layers.DNSTypeA, false, 0)))
}

func BenchmarkDecodeTLSHello(b *testing.B) {
	benchPacket(b, tcpFrame(b, pc4, 51000, srv4, 443, 1, clientHello(b, "secure.example.test")))
}

func BenchmarkDecodeHTTP(b *testing.B) {
	benchPacket(b, tcpFrame(b, pc6, 51001, srv6, 80, 1, []byte("GET / HTTP/1.1\r\nHost: www.example.test\r\nAccept: */*\r\n\r\n")))
}

// BenchmarkDecodeCapture is `carrel traffic decode` without the terminal:
// a pcap of a browsing-like mix read from memory. Set CARREL_BENCH_PCAP to
// use a file (bench/capture genmix writes one).
func BenchmarkDecodeCapture(b *testing.B) {
	file := os.Getenv("CARREL_BENCH_PCAP")
	if file == "" {
		b.Skip("set CARREL_BENCH_PCAP to a pcap (capture-bench genmix -n 200000 -out FILE)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var pkts uint64
	for b.Loop() {
		st, err := DecodeCapture(bytes.NewReader(data), discardSink{})
		if err != nil {
			b.Fatal(err)
		}
		pkts += st.Packets
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
}
