package capture

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func TestParseDNS(t *testing.T) {
	// A response whose question name is a compression pointer into a
	// second copy of the name, built by hand.
	ptr := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0,
		0xc0, 18, 0, 28, 0, 1,
		3, 'w', 'w', 'w', 4, 't', 'e', 's', 't', 0}
	loop := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
	odd := dnsQuery(t, "a.b", layers.DNSTypeA, false, 0)
	odd[13] = ' ' // the label "a" becomes " "
	tests := []struct {
		name      string
		msg       []byte
		ok        bool
		wantName  string
		wantType  uint16
		wantRCode uint8
		wantResp  bool
	}{
		{"query A", dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0), true, "www.example.test", 1, 0, false},
		{"NXDOMAIN AAAA", dnsQuery(t, "nope.example.test", layers.DNSTypeAAAA, true, layers.DNSResponseCodeNXDomain), true, "nope.example.test", 28, 3, true},
		{"root", dnsQuery(t, "", layers.DNSTypeNS, false, 0), true, ".", 2, 0, false},
		{"pointer", ptr, true, "www.test", 28, 0, true},
		{"escaped byte", odd, true, `\032.b`, 1, 0, false},
		{"pointer loop", loop, false, "", 0, 0, false},
		{"short header", []byte{0, 1, 2}, false, "", 0, 0, false},
		{"no question", make([]byte, 12), false, "", 0, 0, false},
		{"cut in name", dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)[:20], false, "", 0, 0, false},
		{"cut before type", dnsQuery(t, "a.test", layers.DNSTypeA, false, 0)[:20], false, "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var scratch [maxNameText]byte
			q, ok := parseDNS(tt.msg, scratch[:])
			if ok != tt.ok {
				t.Fatalf("parseDNS(% x) ok = %v; want %v", tt.msg, ok, tt.ok)
			}
			if !ok {
				return
			}
			if string(q.name) != tt.wantName || q.qtype != tt.wantType || q.rcode != tt.wantRCode || q.response != tt.wantResp {
				t.Errorf("parseDNS = {%q %d %d %v}; want {%q %d %d %v}", q.name, q.qtype, q.rcode, q.response,
					tt.wantName, tt.wantType, tt.wantRCode, tt.wantResp)
			}
		})
	}
}

func TestParseDNSLongNameBounded(t *testing.T) {
	// 5 labels of 63 bytes exceed the 255-byte limit: refused, not read on.
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for range 5 {
		msg = append(msg, 63)
		msg = append(msg, bytes.Repeat([]byte{0xff}, 63)...)
	}
	msg = append(msg, 0, 0, 1, 0, 1)
	var scratch [maxNameText]byte
	if _, ok := parseDNS(msg, scratch[:]); ok {
		t.Errorf("parseDNS(name of 320 bytes) ok = true; want false")
	}
}

func TestClientHelloSNI(t *testing.T) {
	hello := clientHello(t, "secure.example.test")
	// The same handshake message split over two TLS records.
	body := hello[5:]
	twoRecords := append(tlsRecord(body[:50]), tlsRecord(body[50:])...)
	noSNI := clientHello(t, "")
	tests := []struct {
		name   string
		in     []byte
		want   string
		result helloResult
	}{
		{"whole", hello, "secure.example.test", helloSNI},
		{"two records", twoRecords, "secure.example.test", helloSNI},
		{"first segment only", hello[:100], "", helloMore},
		{"header only", hello[:3], "", helloMore},
		{"second record missing", twoRecords[:60], "", helloMore},
		{"IP address, no SNI", noSNI, "", helloNoSNI},
		{"not TLS", []byte("GET / HTTP/1.1\r\n"), "", helloNotTLS},
		{"server hello", append([]byte{0x16, 3, 3, 0, 4, 2}, 0, 0, 0), "", helloNotTLS},
		{"alert", []byte{0x15, 3, 3, 0, 2, 2, 40}, "", helloNotTLS},
		{"continued in next record", append([]byte{0x16, 3, 1, 0, 8, 1, 0, 0, 100}, make([]byte, 4)...), "", helloMore},
		{"longer than we hold", append([]byte{0x16, 3, 1, 0, 8, 1, 1, 0, 0}, make([]byte, 4)...), "", helloNotTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sni, r, _ := clientHelloSNI(tt.in, make([]byte, 0, maxHello))
			if r != tt.result || string(sni) != tt.want {
				t.Errorf("clientHelloSNI(%d bytes) = %q, %d; want %q, %d", len(tt.in), sni, r, tt.want, tt.result)
			}
		})
	}
}

// tlsRecord wraps a handshake fragment in a TLS record header.
func tlsRecord(frag []byte) []byte {
	r := []byte{0x16, 3, 1, 0, 0}
	binary.BigEndian.PutUint16(r[3:], uint16(len(frag)))
	return append(r, frag...)
}

func TestRequestHost(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		result httpResult
	}{
		{"GET /secret/path?q=1 HTTP/1.1\r\nHost: www.example.test\r\nCookie: x\r\n\r\n", "www.example.test", httpHost},
		{"POST /login HTTP/1.0\r\nUser-Agent: x\r\nhOsT:   Example.TEST:8080  \r\n\r\nuser=a", "Example.TEST:8080", httpHost},
		{"GET / HTTP/1.1\nHost: lf.test\n\n", "lf.test", httpHost},
		{"GET / HTTP/1.0\r\n\r\n", "", httpNoHost},
		{"GET / HTTP/1.1\r\nHost:\r\n\r\n", "", httpNoHost},
		{"GET / HTTP/1.1\r\nAccept: */*\r\n", "", httpMore},
		{"GET /very/long", "", httpMore},
		{"GET / HTTP/2.0\r\nHost: h2.test\r\n\r\n", "", httpNotRequest},
		{"GETS / HTTP/1.1\r\nHost: x\r\n\r\n", "", httpNotRequest},
		{"HTTP/1.1 200 OK\r\nHost: resp.test\r\n\r\n", "", httpNotRequest},
		{"", "", httpNotRequest},
	}
	for _, tt := range tests {
		host, r := requestHost([]byte(tt.in))
		if r != tt.result || string(host) != tt.want {
			t.Errorf("requestHost(%q) = %q, %d; want %q, %d", tt.in, host, r, tt.want, tt.result)
		}
	}
}

func TestRequestHostBounded(t *testing.T) {
	head := "GET / HTTP/1.1\r\n" + string(bytes.Repeat([]byte("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), 200))
	if _, r := requestHost([]byte(head)); r != httpNotRequest {
		t.Errorf("requestHost(%d bytes of headers without an end) = %d; want httpNotRequest (give up past maxHeaders)", len(head), r)
	}
}
