package capture

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readHex reads a testdata/quic file: hex lines after '#' comments.
func readHex(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "quic", name))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		v, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
	return out
}

var rfcDCID = []byte{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08}

// TestQUICInitialKeysRFC: the client's Initial key and IV for the RFC's
// connection ID are the ones RFC 9001 A.1 and RFC 9369 A.1 list.
func TestQUICInitialKeysRFC(t *testing.T) {
	for _, tt := range []struct {
		version uint32
		key, iv string
	}{
		{quicV1, "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c"},
		{quicV2, "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f"},
	} {
		k, err := clientInitialKeys(tt.version, rfcDCID)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(k.iv[:]); got != tt.iv {
			t.Errorf("%s: client IV %s; want %s", quicName(tt.version), got, tt.iv)
		}
		// The key is inside the AEAD: compare what it seals with what a
		// GCM made from the RFC's key seals.
		key, _ := hex.DecodeString(tt.key)
		block, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(block)
		nonce := make([]byte, 12)
		if got, want := k.aead.Seal(nil, nonce, []byte("x"), nil), ref.Seal(nil, nonce, []byte("x"), nil); !bytes.Equal(got, want) {
			t.Errorf("%s: client key differs from %s", quicName(tt.version), tt.key)
		}
	}
}

func quicName(v uint32) string {
	if v == quicV2 {
		return "QUIC v2"
	}
	return "QUIC v1"
}

// TestQUICDecryptRFC: the client Initials of RFC 9001 A.2 and RFC 9369 A.2
// decrypt byte for byte to the header and payload the RFCs give.
func TestQUICDecryptRFC(t *testing.T) {
	plain := readHex(t, "client-initial-plaintext.hex")
	wantPayload := append(bytes.Clone(plain[1]), make([]byte, 1162-len(plain[1]))...)
	for _, tt := range []struct {
		file    string
		version uint32
		header  string
	}{
		{"rfc9001-client-initial.hex", quicV1, "c300000001088394c8f03e5157080000449e00000002"},
		{"rfc9369-client-initial.hex", quicV2, "d36b3343cf088394c8f03e5157080000449e00000002"},
	} {
		pkt := readHex(t, tt.file)[0]
		h, ok := parseLongHeader(pkt)
		if !ok || !h.initial || h.version != tt.version || !bytes.Equal(h.dcid, rfcDCID) || h.end != len(pkt) {
			t.Fatalf("%s: parseLongHeader = %+v, %v; want an Initial of %s for the whole packet", tt.file, h, ok, quicName(tt.version))
		}
		k, err := clientInitialKeys(h.version, h.dcid)
		if err != nil {
			t.Fatal(err)
		}
		o := quicOpener{pkt: make([]byte, maxQUICPacket)}
		pl, ok := o.open(&k, pkt, h.pnOff)
		if !ok {
			t.Fatalf("%s: the client Initial did not decrypt", tt.file)
		}
		if got := hex.EncodeToString(o.pkt[:h.pnOff+4]); got != tt.header {
			t.Errorf("%s: unprotected header %s; want %s", tt.file, got, tt.header)
		}
		if !bytes.Equal(pl, wantPayload) {
			t.Errorf("%s: payload differs from the RFC's:\n%x\nwant\n%x", tt.file, pl, wantPayload)
		}
		var cn quicConn
		cn.buf = make([]byte, maxQUICHello)
		if r := cn.frames(pl); r != quicHello {
			t.Fatalf("%s: frames = %d; want the whole ClientHello", tt.file, r)
		}
		if sni, r, ech := helloBody(cn.hello()); r != helloSNI || string(sni) != "example.com" || ech {
			t.Errorf("%s: hello = %q, %d, ech %v; want example.com without ECH", tt.file, sni, r, ech)
		}
	}
}

// TestQUICRecordsRFC: the RFC client Initials, as UDP datagrams through
// the processor, give a tls record for example.com marked quic; the RFC
// server Initials, which the client keys cannot open, give none.
func TestQUICRecordsRFC(t *testing.T) {
	for _, v := range []string{"rfc9001", "rfc9369"} {
		sink := &memSink{}
		p := testProcessor(t, sink)
		server := readHex(t, v+"-server-initial.hex")[0]
		feedUDP(t, p, srv4, 443, pc4, 50000, append(server, make([]byte, 1200)...)) // padded as a server pads
		feedUDP(t, p, pc4, 50000, srv4, 443, readHex(t, v+"-client-initial.hex")[0])
		got := tlsRecords(t, p, sink)
		want := `{"kind":"tls","ts":"2024-05-01T10:00:00.123456789Z","proto":"udp","src":"10.200.7.2","sport":50000,"dst":"10.200.7.1","dport":443,"sni":"example.com","quic":true}` + "\n"
		if got != want {
			t.Errorf("%s: records\n%s\nwant\n%s", v, got, want)
		}
	}
}

func feedUDP(t testing.TB, p *processor, src netipAddr, sport uint16, dst netipAddr, dport uint16, payload []byte) {
	t.Helper()
	f := udpFrame(t, src, sport, dst, dport, payload)
	p.packet(f, ci(t0, f))
}

// tlsRecords flushes p and returns the tls records it wrote.
func tlsRecords(t testing.TB, p *processor, sink *memSink) string {
	t.Helper()
	p.flushFlows()
	p.out.flush()
	var b strings.Builder
	for _, l := range sink.lines {
		if bytes.Contains(l, []byte(`"kind":"tls"`)) {
			b.Write(l)
		}
	}
	return b.String()
}

// quicClient seals client Initial packets as a QUIC client would, with
// keys from the (RFC-checked) derivation.
type quicClient struct {
	version uint32
	dcid    []byte
	keys    quicKeys
	pn      uint32
}

func newQUICClient(t testing.TB, version uint32, dcid []byte) *quicClient {
	t.Helper()
	k, err := clientInitialKeys(version, dcid)
	if err != nil {
		t.Fatal(err)
	}
	return &quicClient{version: version, dcid: dcid, keys: k}
}

// initial returns one Initial packet carrying frames, padded with PADDING
// frames to pad bytes (0: no padding), with a 2-byte packet number.
func (c *quicClient) initial(frames []byte, pad int) []byte {
	typ := byte(0)
	if c.version == quicV2 {
		typ = 1
	}
	hdr := []byte{0xc0 | typ<<4 | 0x01}
	hdr = binary.BigEndian.AppendUint32(hdr, c.version)
	hdr = append(hdr, byte(len(c.dcid)))
	hdr = append(hdr, c.dcid...)
	hdr = append(hdr, 4, 0xa, 0xb, 0xc, 0xd) // source connection ID
	hdr = append(hdr, 0)                     // no token
	payload := bytes.Clone(frames)
	if n := pad - len(hdr) - 2 - 2 - len(payload) - 16; n > 0 {
		payload = append(payload, make([]byte, n)...)
	}
	length := 2 + len(payload) + 16
	hdr = append(hdr, 0x40|byte(length>>8), byte(length))
	pnOff := len(hdr)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(c.pn))
	nonce := c.keys.iv
	for i := range 8 {
		nonce[11-i] ^= byte(uint64(c.pn) >> (8 * i))
	}
	c.pn++
	pkt := c.keys.aead.Seal(hdr, nonce[:], payload, hdr)
	var mask [16]byte
	c.keys.hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	pkt[pnOff] ^= mask[1]
	pkt[pnOff+1] ^= mask[2]
	return pkt
}

// cryptoFrame is a CRYPTO frame carrying data at offset off.
func cryptoFrame(off int, data []byte) []byte {
	f := []byte{0x06}
	f = binary.BigEndian.AppendUint32(f, 0x80000000|uint32(off)) // 4-byte varint
	f = binary.BigEndian.AppendUint16(f, 0x4000|uint16(len(data)))
	return append(f, data...)
}

// handshakeMessage strips the TLS record header from Go's ClientHello.
func handshakeMessage(t testing.TB, name string) []byte {
	t.Helper()
	rec := clientHello(t, name)
	return rec[5:]
}

// TestQUICSplitHello: a ClientHello split across two Initial packets,
// delivered in either order, and across several CRYPTO frames out of order
// in one packet, still gives the name, in v1 and v2; coalesced packets of
// other types after the Initial are skipped.
func TestQUICSplitHello(t *testing.T) {
	msg := handshakeMessage(t, "split.quic.test")
	if len(msg) < 600 {
		t.Fatalf("ClientHello of %d bytes is too short to split", len(msg))
	}
	a, b, c := msg[:300], msg[300:500], msg[500:]
	ping := []byte{0x01}
	ack := []byte{0x02, 0x00, 0x00, 0x00, 0x00}
	for _, v := range []uint32{quicV1, quicV2} {
		hs := []byte{0xe0 | 0x01, 0, 0, 0, 1, 1, 9, 0, 0x40, 20} // a Handshake packet, v1
		if v == quicV2 {
			hs[0] = 0xf1
			binary.BigEndian.PutUint32(hs[1:], quicV2)
		}
		hs = append(hs, make([]byte, 20)...)
		for _, tt := range []struct {
			name    string
			packets func(*quicClient) [][]byte
			reverse bool
		}{
			{"two packets in order", func(q *quicClient) [][]byte {
				return [][]byte{q.initial(cryptoFrame(0, msg[:500]), 1200), q.initial(cryptoFrame(500, c), 1200)}
			}, false},
			{"two packets reversed", func(q *quicClient) [][]byte {
				return [][]byte{q.initial(cryptoFrame(0, msg[:500]), 1200), q.initial(cryptoFrame(500, c), 1200)}
			}, true},
			{"frames out of order in one packet", func(q *quicClient) [][]byte {
				f := append(append(append(cryptoFrame(500, c), ping...), cryptoFrame(0, a)...), ack...)
				return [][]byte{q.initial(append(f, cryptoFrame(300, b)...), 1200)}
			}, false},
			{"overlapping retransmission", func(q *quicClient) [][]byte {
				return [][]byte{q.initial(cryptoFrame(0, a), 1200), q.initial(cryptoFrame(0, a), 1200), q.initial(cryptoFrame(200, msg[200:]), 1200)}
			}, false},
			{"coalesced with a handshake packet", func(q *quicClient) [][]byte {
				return [][]byte{append(q.initial(cryptoFrame(0, msg), 1000), hs...)}
			}, false},
		} {
			name := tt.name
			dgrams := tt.packets(newQUICClient(t, v, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
			if tt.reverse {
				slices.Reverse(dgrams)
			}
			sink := &memSink{}
			p := testProcessor(t, sink)
			for _, d := range dgrams {
				if len(d) < quicMinDatagram {
					d = append(d, make([]byte, quicMinDatagram-len(d))...) // UDP-level padding after the packets
				}
				feedUDP(t, p, pc4, 50001, srv4, 443, d)
			}
			got := tlsRecords(t, p, sink)
			if !strings.Contains(got, `"sni":"split.quic.test","quic":true}`) || strings.Count(got, "\n") != 1 {
				t.Errorf("%s, %s: records %q; want one tls record for split.quic.test marked quic", quicName(v), name, got)
			}
			if n := len(p.quic.free); n != quicSlots {
				t.Errorf("%s, %s: %d QUIC slots free after the flush; want all %d", quicName(v), name, n, quicSlots)
			}
		}
	}
}

// TestQUICNotFollowed: what carrel must not read or keep following.
func TestQUICNotFollowed(t *testing.T) {
	msg := handshakeMessage(t, "x.quic.test")
	q := newQUICClient(t, quicV1, []byte{9, 9, 9, 9})
	whole := q.initial(cryptoFrame(0, msg), 1200)
	short := append([]byte{0x41}, make([]byte, 1300)...) // a 1-RTT packet: short header
	tests := []struct {
		name string
		dg   []byte
	}{
		{"short header", short},
		{"Initial below 1200 bytes", newQUICClient(t, quicV1, []byte{1}).initial(cryptoFrame(0, msg), 0)[:1199]},
		{"unknown version", func() []byte { b := bytes.Clone(whole); b[4] = 7; return b }()},
		{"a bit flipped in the ciphertext", func() []byte { b := bytes.Clone(whole); b[len(b)-40] ^= 1; return b }()},
		{"a bit flipped in the connection ID", func() []byte { b := bytes.Clone(whole); b[6] ^= 1; return b }()},
		{"a server handshake message", newQUICClient(t, quicV1, []byte{2}).initial(cryptoFrame(0, []byte{0x02, 0, 0, 4, 1, 2, 3, 4}), 1200)},
	}
	for _, tt := range tests {
		sink := &memSink{}
		p := testProcessor(t, sink)
		feedUDP(t, p, pc4, 50002, srv4, 443, tt.dg)
		if got := tlsRecords(t, p, sink); got != "" {
			t.Errorf("%s: records %q; want none", tt.name, got)
		}
	}
	// Forged Initials on one flow cost a bounded number of key
	// derivations, however many come.
	p := testProcessor(t, &memSink{})
	for i := range 100 {
		forged := newQUICClient(t, quicV1, []byte{byte(i), 1}).initial(cryptoFrame(0, msg), 1200)
		forged[len(forged)-20] ^= 1 // fails authentication
		feedUDP(t, p, pc4, 50004, srv4, 443, forged)
	}
	if p.quicDerived != maxQUICFailures {
		t.Errorf("100 undecryptable Initials on one flow: %d key derivations; want %d", p.quicDerived, maxQUICFailures)
	}
	// After the name is found, later Initials of the flow are not
	// decrypted again: one record, and the flow is marked done.
	sink := &memSink{}
	p = testProcessor(t, sink)
	feedUDP(t, p, pc4, 50003, srv4, 443, whole)
	feedUDP(t, p, pc4, 50003, srv4, 443, q.initial(cryptoFrame(0, msg), 1200))
	if got := tlsRecords(t, p, sink); strings.Count(got, "\n") != 1 {
		t.Errorf("a connection's Initials after the hello: records %q; want exactly one", got)
	}
}

// TestQUICConnectionsBounded: more half-sent ClientHellos than slots
// evict the least recently active, count it, and never grow memory; a
// connection that completes afterwards still gives its name.
func TestQUICConnectionsBounded(t *testing.T) {
	msg := handshakeMessage(t, "late.quic.test")
	sink := &memSink{}
	p := testProcessor(t, sink)
	for i := range 3 * quicSlots {
		q := newQUICClient(t, quicV1, []byte{byte(i), byte(i >> 8), 1, 2})
		feedUDP(t, p, pc4, uint16(20000+i), srv4, 443, q.initial(cryptoFrame(0, msg[:100]), 1200))
	}
	if p.st.reasmFull != 2*quicSlots {
		t.Errorf("connections evicted = %d; want %d", p.st.reasmFull, 2*quicSlots)
	}
	q := newQUICClient(t, quicV1, []byte{0xee})
	feedUDP(t, p, pc4, 30000, srv4, 443, q.initial(cryptoFrame(0, msg[:700]), 1200))
	feedUDP(t, p, pc4, 30000, srv4, 443, q.initial(cryptoFrame(700, msg[700:]), 1200))
	if got := tlsRecords(t, p, sink); !strings.Contains(got, "late.quic.test") {
		t.Errorf("records %q; want late.quic.test after the flood", got)
	}
	// A CRYPTO offset beyond what a ClientHello may hold gives up.
	var cn quicConn
	cn.buf = make([]byte, maxQUICHello)
	if r := cn.frames(cryptoFrame(maxQUICHello-1, []byte{1, 2})); r != quicGiveUp {
		t.Errorf("frames(CRYPTO past %d bytes) = %d; want quicGiveUp", maxQUICHello, r)
	}
	// So do more scattered ranges than it tracks.
	cn = quicConn{buf: make([]byte, maxQUICHello)}
	var f []byte
	for i := range quicSpans + 1 {
		f = append(f, cryptoFrame(10+i*10, []byte{1})...)
	}
	if r := cn.frames(f); r != quicGiveUp {
		t.Errorf("frames(%d disjoint CRYPTO ranges) = %d; want quicGiveUp", quicSpans+1, r)
	}
}

// TestQUICTruncatedAndCorrupted: every truncation and every single-byte
// corruption of the RFC client Initial and of split packets goes through
// the processor without a panic.
func TestQUICTruncatedAndCorrupted(t *testing.T) {
	pkts := [][]byte{readHex(t, "rfc9001-client-initial.hex")[0], readHex(t, "rfc9369-client-initial.hex")[0]}
	q := newQUICClient(t, quicV1, []byte{5, 5, 5, 5, 5})
	pkts = append(pkts, q.initial(cryptoFrame(0, handshakeMessage(t, "c.quic.test")), 1200))
	p := testProcessor(t, &memSink{})
	port := uint16(1000)
	for _, pkt := range pkts {
		for n := range len(pkt) + 1 {
			d := append(bytes.Clone(pkt[:n]), make([]byte, max(0, quicMinDatagram-n))...)
			port++
			feedUDP(t, p, pc4, port, srv4, 443, d)
		}
		for i := range pkt {
			d := bytes.Clone(pkt)
			d[i] ^= 0x5a
			port++
			feedUDP(t, p, pc4, port, srv4, 443, d)
		}
	}
	p.flushFlows()
}

// echConfigList is an ECHConfigList (RFC 9849 section 4) for public name
// with a fresh X25519 key, so Go's TLS client offers real ECH.
func echConfigList(t testing.TB, public string) []byte {
	t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.PublicKey().Bytes()
	var c []byte
	c = append(c, 7)                             // config_id
	c = binary.BigEndian.AppendUint16(c, 0x0020) // KEM: DHKEM(X25519, HKDF-SHA256)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pub)))
	c = append(c, pub...)
	c = binary.BigEndian.AppendUint16(c, 4)      // cipher suites
	c = binary.BigEndian.AppendUint16(c, 0x0001) // HKDF-SHA256
	c = binary.BigEndian.AppendUint16(c, 0x0001) // AES-128-GCM
	c = append(c, 0)                             // maximum_name_length
	c = append(c, byte(len(public)))
	c = append(c, public...)
	c = binary.BigEndian.AppendUint16(c, 0) // extensions
	cfg := binary.BigEndian.AppendUint16(nil, extECH)
	cfg = binary.BigEndian.AppendUint16(cfg, uint16(len(c)))
	cfg = append(cfg, c...)
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(cfg))), cfg...)
}

// goECHHello is the first flight of Go's TLS client offering ECH to
// inner with the config's public name outside.
func goECHHello(t testing.TB, inner, public string) []byte {
	t.Helper()
	c := &helloConn{}
	// The handshake fails at the first read, after the hello is written.
	_ = tls.Client(c, &tls.Config{ServerName: inner, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: echConfigList(t, public)}).Handshake()
	hello := c.buf.Bytes()
	if len(hello) == 0 {
		t.Fatal("Go's TLS client wrote no ClientHello with ECH")
	}
	return hello
}

// TestECHMarked: a ClientHello carrying encrypted_client_hello is recorded
// with "ech":true — a crafted one over TCP and QUIC, and Go's own client
// offering real ECH, whose outer name (the public name) is what the wire
// shows; a hello without the extension has no marker.
func TestECHMarked(t *testing.T) {
	plain := handshakeMessage(t, "plain.example.test")
	crafted := withExtension(t, plain, extECH, []byte{0, 0, 1, 0, 1, 7, 0, 0, 0, 4, 1, 2, 3, 4})
	real := goECHHello(t, "secret.example.test", "public.example.test")
	if bytes.Contains(real, []byte("secret.example.test")) {
		t.Fatal("Go's ECH hello shows the inner name in clear: not ECH")
	}
	tests := []struct {
		name, want string
		feed       func(p *processor)
	}{
		{"crafted over TCP", `"sni":"plain.example.test","ech":true}`, func(p *processor) {
			feedTCP(t, p, tlsRecord(crafted))
		}},
		{"crafted over QUIC", `"sni":"plain.example.test","quic":true,"ech":true}`, func(p *processor) {
			feedUDP(t, p, pc4, 50010, srv4, 443, newQUICClient(t, quicV1, []byte{3, 3}).initial(cryptoFrame(0, crafted), 1200))
		}},
		{"Go's client with ECH", `"sni":"public.example.test","ech":true}`, func(p *processor) { feedTCP(t, p, real) }},
		{"no ECH", `"sni":"plain.example.test"}`, func(p *processor) { feedTCP(t, p, tlsRecord(plain)) }},
	}
	for _, tt := range tests {
		sink := &memSink{}
		p := testProcessor(t, sink)
		tt.feed(p)
		if got := tlsRecords(t, p, sink); !strings.HasSuffix(strings.TrimSpace(got), tt.want) || strings.Count(got, "\n") != 1 {
			t.Errorf("%s: records %q; want one ending %s", tt.name, got, tt.want)
		}
	}
}

// helloConn records what a TLS client writes; reading fails.
type helloConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *helloConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *helloConn) Write(b []byte) (int, error)      { return c.buf.Write(b) }
func (c *helloConn) Close() error                     { return nil }
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }
func (c *helloConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *helloConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

func feedTCP(t testing.TB, p *processor, stream []byte) {
	t.Helper()
	f := tcpFrame(t, pc4, 51100, srv4, 443, 1, stream)
	p.packet(f, ci(t0, f))
}

// withExtension appends an extension to a ClientHello handshake message,
// fixing its lengths.
func withExtension(t testing.TB, msg []byte, typ uint16, data []byte) []byte {
	t.Helper()
	body := msg[4:]
	c := cursor{b: body}
	c.skip(2 + 32)
	c.skip(int(c.u8()))
	c.skip(int(c.u16()))
	c.skip(int(c.u8()))
	extOff := len(body) - len(c.b)
	if c.bad || len(c.b) < 2 {
		t.Fatal("ClientHello without extensions")
	}
	ext := c.b[2:]
	ext = binary.BigEndian.AppendUint16(bytes.Clone(ext), typ)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(data)))
	ext = append(ext, data...)
	nb := append(bytes.Clone(body[:extOff]), byte(len(ext)>>8), byte(len(ext)))
	nb = append(nb, ext...)
	out := []byte{1, byte(len(nb) >> 16), byte(len(nb) >> 8), byte(len(nb))}
	return append(out, nb...)
}

// TestQUICAllocs: packets that are not QUIC Initials allocate nothing —
// a 1-RTT (short header) datagram to port 443, a Handshake packet, a
// datagram to port 443 below 1200 bytes — and neither do later Initials
// of a connection being followed (its keys are kept). A connection's
// first Initial derives its keys; the figure is logged.
func TestQUICAllocs(t *testing.T) {
	p := testProcessor(t, discardSink{})
	hs := append([]byte{0xe1, 0, 0, 0, 1, 1, 9, 0, 0x44, 0xd0}, make([]byte, 1250)...)
	for _, tt := range []struct {
		name string
		dg   []byte
	}{
		{"1-RTT to 443", append([]byte{0x41}, make([]byte, 1350)...)},
		{"Handshake packet", hs},
		{"small datagram to 443", append([]byte{0xc3}, make([]byte, 500)...)},
	} {
		f := udpFrame(t, pc4, 50020, srv4, 443, tt.dg)
		c := ci(t0, f)
		p.packet(f, c)
		if n := testing.AllocsPerRun(1000, func() { p.packet(f, c) }); n != 0 {
			t.Errorf("%s: %v allocations per packet; want 0", tt.name, n)
		}
	}
	msg := handshakeMessage(t, "alloc.quic.test")
	// Later Initials of one connection, whose hello is not complete yet.
	q := newQUICClient(t, quicV1, []byte{4, 4, 4, 4})
	later := udpFrame(t, pc4, 50021, srv4, 443, q.initial(cryptoFrame(0, msg[:100]), 1200))
	p.packet(later, ci(t0, later))
	if n := testing.AllocsPerRun(1000, func() { p.packet(later, ci(t0, later)) }); n != 0 {
		t.Errorf("a followed connection's later Initial: %v allocations; want 0", n)
	}
	// First Initials of new connections: key derivation allocates.
	firsts := make([][]byte, 201)
	for i := range firsts {
		q := newQUICClient(t, quicV1, []byte{byte(i), 7, 7, 7})
		firsts[i] = udpFrame(t, pc4, uint16(40000+i), srv4, 443, q.initial(cryptoFrame(0, msg), 1200))
	}
	i := 0
	n := testing.AllocsPerRun(200, func() { p.packet(firsts[i], ci(t0, firsts[i])); i++ })
	t.Logf("a new connection's first Initial (keys derived, hello found, record written): %v allocations", n)
}

// TestQUICRecordTime: a QUIC record carries the packet's time and
// addresses, over IPv6 and on a port other than 443.
func TestQUICRecordTime(t *testing.T) {
	sink := &memSink{}
	p := testProcessor(t, sink)
	q := newQUICClient(t, quicV2, []byte{8, 8})
	f := udpFrame(t, pc6, 50030, srv6, 8443, q.initial(cryptoFrame(0, handshakeMessage(t, "v6.quic.test")), 1200))
	when := t0.Add(3 * time.Second)
	p.packet(f, ci(when, f))
	r, err := DecodeJSON([]byte(tlsRecords(t, p, sink)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.TS.Equal(when) || !r.QUIC || r.Src != pc6 || r.DstPort != 8443 || r.Proto != protoUDP || r.SNI != "v6.quic.test" {
		t.Errorf("record %+v; want v6.quic.test from %v at %v, quic, udp to 8443", r, pc6, when)
	}
}
