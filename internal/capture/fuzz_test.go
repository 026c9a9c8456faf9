package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// The seed corpora under testdata/fuzz/ are real messages (from gopacket's
// DNS layer, Go's TLS client and plain requests) and their edge cases;
// TestFuzzCorpus -update rewrites them.

func FuzzDNS(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		var scratch [maxNameText]byte
		q, ok := parseDNS(msg, scratch[:])
		if !ok {
			return
		}
		if len(q.name) == 0 || len(q.name) > maxNameText {
			t.Fatalf("name of %d bytes; want 1..%d", len(q.name), maxNameText)
		}
		checkPrintable(t, q.name)
		r := Record{Kind: KindDNS, TS: t0, Proto: protoUDP, Src: pc4, Dst: srv4, Name: string(q.name), QType: q.qtype, RCode: q.rcode, Response: q.response}
		roundTrip(t, &r)
	})
}

func FuzzClientHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		scratch := make([]byte, 0, maxHello)
		sni, r, _ := clientHelloSNI(stream, scratch)
		if r == helloSNI && len(sni) == 0 {
			t.Fatal("helloSNI with an empty name")
		}
		// More bytes never change a name already found.
		if half := stream[:len(stream)/2]; len(half) > 0 {
			if hs, hr, _ := clientHelloSNI(half, make([]byte, 0, maxHello)); hr == helloSNI && (r != helloSNI || !bytes.Equal(hs, sni)) {
				t.Fatalf("prefix found %q, the whole stream %q (%d)", hs, sni, r)
			}
		}
	})
}

func FuzzRequestHost(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		host, r := requestHost(p)
		if r == httpHost && (len(host) == 0 || bytes.ContainsAny(host, "\r\n")) {
			t.Fatalf("host %q spans lines or is empty", host)
		}
		if half := p[:len(p)/2]; len(half) > 0 {
			if hh, hr := requestHost(half); hr == httpHost && (r != httpHost || !bytes.Equal(hh, host)) {
				t.Fatalf("prefix found %q, the whole request %q (%d)", hh, host, r)
			}
		}
	})
}

// FuzzPacket runs whole frames through the decode path: no panic, and
// every record it emits is valid wire form that decodes and re-encodes to
// the same bytes.
func FuzzPacket(f *testing.F) {
	// One processor for all inputs, as in a capture: state left behind by
	// one input (flows, reassembly) meets the next.
	sink := &memSink{}
	p := testProcessor(f, sink)
	f.Fuzz(func(t *testing.T, frame []byte) {
		sink.lines = sink.lines[:0]
		p.packet(frame, ci(t0, frame))
		p.packet(frame, ci(t0, frame)) // twice: a retransmission, a second look
		p.flushFlows()
		p.out.flush()
		for _, line := range sink.lines {
			checkPrintable(t, bytes.TrimSuffix(line, []byte("\n")))
			r, err := DecodeJSON(line)
			if err != nil {
				t.Fatalf("DecodeJSON(%s): %v", line, err)
			}
			if again := AppendJSON(nil, &r); !bytes.Equal(again, line) {
				t.Fatalf("re-encoded\n%s\nwant\n%s", again, line)
			}
		}
	})
}

// FuzzQUICInitial runs whole UDP datagrams to port 443 through the QUIC
// path: header parsing, header protection, decryption. No panic, and every
// record is valid wire form. The seeds are the RFC 9001 and RFC 9369 client
// and server Initials and Initials carrying split ClientHellos.
func FuzzQUICInitial(f *testing.F) {
	sink := &memSink{}
	p := testProcessor(f, sink)
	f.Fuzz(func(t *testing.T, dg []byte) {
		sink.lines = sink.lines[:0]
		fr := udpFrame(t, pc4, 50000, srv4, 443, dg)
		p.packet(fr, ci(t0, fr))
		p.packet(fr, ci(t0, fr))
		p.flushFlows()
		p.out.flush()
		checkLines(t, sink.lines)
	})
}

// FuzzQUICCrypto seals its input as the payload of a client Initial (so
// it decrypts) and runs it through the processor: the frame walk, the
// CRYPTO reassembly and the ClientHello parser see arbitrary plaintext.
func FuzzQUICCrypto(f *testing.F) {
	sink := &memSink{}
	p := testProcessor(f, sink)
	port := uint16(0)
	f.Fuzz(func(t *testing.T, payload []byte) {
		sink.lines = sink.lines[:0]
		q := newQUICClient(t, quicV1, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		port++ // a new flow each time, so no input ends another's
		dg := q.initial(payload, 1200)
		fr := udpFrame(t, pc4, port, srv4, 443, append(dg, make([]byte, max(0, 1200-len(dg)))...))
		p.packet(fr, ci(t0, fr))
		p.flushFlows()
		p.out.flush()
		checkLines(t, sink.lines)
		for _, l := range sink.lines {
			if bytes.Contains(l, []byte(`"kind":"tls"`)) && !bytes.Contains(l, []byte(`"quic":true`)) {
				t.Fatalf("a tls record from a QUIC datagram without the quic marker: %s", l)
			}
		}
	})
}

func checkLines(t *testing.T, lines [][]byte) {
	t.Helper()
	for _, line := range lines {
		checkPrintable(t, bytes.TrimSuffix(line, []byte("\n")))
		r, err := DecodeJSON(line)
		if err != nil {
			t.Fatalf("DecodeJSON(%s): %v", line, err)
		}
		if again := AppendJSON(nil, &r); !bytes.Equal(again, line) {
			t.Fatalf("re-encoded\n%s\nwant\n%s", again, line)
		}
	}
}

// FuzzDecodeJSON: whatever DecodeJSON accepts re-encodes to a form that
// decodes to the same record; and wherever readPlain takes a line, it
// reads what encoding/json reads.
func FuzzDecodeJSON(f *testing.F) {
	tail := `,"ts":"2024-05-01T10:00:00Z","proto":"tcp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":2,"sni":"a"}`
	for _, head := range []string{`{"kind":"tls"`, `{"kind":"http","kind":"tls"`, `{"Kind":"tls"`, `{"kind":null,"kind":"tls"`, `{"kind":"t\u006cs"`} {
		f.Add([]byte(head + tail))
	}
	f.Add([]byte(`{"kind":"tls","sport":01}`))
	f.Add([]byte(`{"kind":"tls","sport":70000}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimRight(line, "\r\n")
		var plain, slow wireRecord
		if plain.readPlain(line) {
			if err := json.Unmarshal(line, &slow); err != nil {
				t.Fatalf("readPlain took %s, encoding/json refuses it: %v", line, err)
			}
			pv, sv := reflect.ValueOf(plain), reflect.ValueOf(slow)
			for i := range pv.NumField() {
				if f := pv.Type().Field(i); f.IsExported() && !reflect.DeepEqual(pv.Field(i).Interface(), sv.Field(i).Interface()) {
					t.Fatalf("%s: readPlain read %s as %v, encoding/json as %v", line, f.Name, reflect.Indirect(pv.Field(i)), reflect.Indirect(sv.Field(i)))
				}
			}
		}
		r, err := DecodeJSON(line)
		if err != nil {
			return
		}
		roundTrip(t, &r)
	})
}

func roundTrip(t *testing.T, r *Record) {
	t.Helper()
	enc := AppendJSON(nil, r)
	back, err := DecodeJSON(enc)
	if err != nil {
		t.Fatalf("DecodeJSON(AppendJSON(r)) = %v for %s", err, enc)
	}
	if again := AppendJSON(nil, &back); !bytes.Equal(again, enc) {
		t.Fatalf("round trip changed the record:\n%s\n%s", enc, again)
	}
}

func checkPrintable(t *testing.T, b []byte) {
	t.Helper()
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("byte %#x in %q: want printable ASCII only", c, b)
		}
	}
}

// TestFuzzCorpus checks the committed seed corpora exist (and, with
// -update, writes them), so `go test` always runs the seeds.
func TestFuzzCorpus(t *testing.T) {
	hello := clientHello(t, "secure.example.test")
	quicMsg := handshakeMessage(t, "seed.quic.test")
	seeds := map[string][][]byte{
		"FuzzDNS": {
			dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0),
			dnsQuery(t, "nope.example.test", layers.DNSTypeAAAA, true, layers.DNSResponseCodeNXDomain),
			{0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 18, 0, 28, 0, 1, 3, 'w', 'w', 'w', 0},
			{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1},
		},
		"FuzzClientHello": {hello, hello[:len(hello)/2], append(tlsRecord(hello[5:50]), tlsRecord(hello[50:])...), clientHello(t, "")},
		"FuzzRequestHost": {
			[]byte("GET /p HTTP/1.1\r\nHost: www.example.test\r\n\r\n"),
			[]byte("POST / HTTP/1.0\r\nhost:x\r\n\r\n"),
			[]byte("GET / HTTP/1.1\r\nAccept: */*\r\n"),
		},
		"FuzzPacket": {
			udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "www.example.test", layers.DNSTypeA, false, 0)),
			udpFrame(t, pc6, 40000, srv6, 53, dnsQuery(t, "v6.example.test", layers.DNSTypeAAAA, false, 0)),
			tcpFrame(t, pc4, 51000, srv4, 443, 1, hello),
			tcpFrame(t, pc4, 51000, srv4, 443, 1, hello[:100]),
			tcpFrame(t, pc6, 51000, srv6, 80, 1, []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")),
			tcpFrame(t, pc4, 51000, srv4, 53, 1, append([]byte{0, 34}, dnsQuery(t, "tcp.example.test", layers.DNSTypeA, false, 0)...)),
		},
		"FuzzDecodeJSON":  {},
		"FuzzQUICInitial": quicSeeds(t),
		"FuzzQUICCrypto": {
			append(readHex(t, "client-initial-plaintext.hex")[1], make([]byte, 900)...),
			append(append(cryptoFrame(500, quicMsg[500:]), 0x01), cryptoFrame(0, quicMsg[:500])...),
			cryptoFrame(0, withExtension(t, quicMsg, extECH, []byte{0, 0, 1, 0, 1, 7, 0, 0, 0, 1, 9})),
			{0x02, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x04, 0x01, 0x00, 0x00, 0x10},
		},
	}
	for i := range goldenRecords {
		seeds["FuzzDecodeJSON"] = append(seeds["FuzzDecodeJSON"], AppendJSON(nil, &goldenRecords[i]))
	}
	for target, inputs := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			os.MkdirAll(dir, 0o755)
			for i, in := range inputs {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) < len(inputs) {
			t.Errorf("seed corpus %s has %d files (%v); want at least %d (go test -run TestFuzzCorpus -update)", dir, len(entries), err, len(inputs))
		}
	}
}

// quicSeeds are datagrams for FuzzQUICInitial.
func quicSeeds(t *testing.T) [][]byte {
	msg := handshakeMessage(t, "seed.quic.test")
	q := newQUICClient(t, quicV1, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	q2 := newQUICClient(t, quicV2, []byte{8, 7, 6, 5})
	return [][]byte{
		readHex(t, "rfc9001-client-initial.hex")[0],
		readHex(t, "rfc9369-client-initial.hex")[0],
		append(readHex(t, "rfc9001-server-initial.hex")[0], make([]byte, 1100)...),
		q.initial(cryptoFrame(0, msg[:400]), 1200),
		q.initial(cryptoFrame(400, msg[400:]), 1200),
		q2.initial(cryptoFrame(0, msg), 1200),
	}
}
