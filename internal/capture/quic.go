package capture

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// QUIC (RFC 9000) carries the TLS ClientHello in CRYPTO frames of the
// client's Initial packets. Those are encrypted, but with keys derived
// from public values only — a fixed salt per version and the Destination
// Connection ID in the packet's own header (RFC 9001 section 5.2) — so any
// observer can read them, and carrel reads the server name there as a
// network tap reads it from a TLS-over-TCP ClientHello. Nothing else of a
// QUIC connection can be decrypted without the endpoints' secrets, and
// carrel decrypts nothing else: only packets that are long-header Initial
// packets of version 1 or 2, only with the client's Initial keys (a
// server's Initial fails authentication with them and is dropped unread),
// and on each flow only until the ClientHello is found.

// QUIC versions whose Initial packets carrel reads.
const (
	quicV1 = 0x00000001 // RFC 9000
	quicV2 = 0x6b3343cf // RFC 9369
)

const (
	// quicMinDatagram: a client pads every datagram carrying an Initial
	// packet to at least 1200 bytes (RFC 9000 section 14.1), and servers
	// drop shorter ones, so shorter datagrams are not looked at.
	quicMinDatagram = 1200
	maxConnID       = 20 // RFC 9000 section 17.2
	// quicSlots bounds the connections whose ClientHello is being
	// collected at once; the least recently active one makes room for a
	// new one (counted in Stats.ReassemblyFull).
	quicSlots = 64
	// maxQUICHello bounds the ClientHello message collected per
	// connection (its 4-byte handshake header included). Real ones are
	// 0.3–3 KiB; post-quantum key shares and ECH make them span two or
	// three Initial packets.
	maxQUICHello = 16384
	// quicSpans bounds the disjoint ranges of CRYPTO data held while
	// frames arrive out of order.
	quicSpans = 8
	// maxQUICPacket bounds the copy of one Initial packet decrypted: the
	// largest UDP payload.
	maxQUICPacket = 65535
	// maxQUICFailures bounds the key derivations spent on a flow whose
	// Initial-looking packets never decrypt (a server's side seen first,
	// or forged ones): after this many, the flow is no longer looked at.
	// A client's first Initial precedes anything the server sends, so a
	// real connection is followed at its first packet.
	maxQUICFailures = 4
)

// Initial salts (RFC 9001 section 5.2, RFC 9369 section 3.3.1).
var (
	quicSaltV1 = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	quicSaltV2 = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
)

// quicKeys are a client's Initial packet protection keys.
type quicKeys struct {
	aead cipher.AEAD
	hp   cipher.Block // header protection, AES-128 in ECB on one block
	iv   [12]byte
}

// clientInitialKeys derives the client's Initial keys for a connection
// whose first Destination Connection ID is dcid.
func clientInitialKeys(version uint32, dcid []byte) (quicKeys, error) {
	salt, prefix := quicSaltV1, "quic "
	if version == quicV2 {
		salt, prefix = quicSaltV2, "quicv2 "
	}
	initial, err := hkdf.Extract(sha256.New, dcid, salt)
	if err != nil {
		return quicKeys{}, err
	}
	client, err := expandLabel(initial, "client in", sha256.Size)
	if err != nil {
		return quicKeys{}, err
	}
	key, err := expandLabel(client, prefix+"key", 16)
	if err != nil {
		return quicKeys{}, err
	}
	iv, err := expandLabel(client, prefix+"iv", 12)
	if err != nil {
		return quicKeys{}, err
	}
	hp, err := expandLabel(client, prefix+"hp", 16)
	if err != nil {
		return quicKeys{}, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return quicKeys{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return quicKeys{}, err
	}
	hpBlock, err := aes.NewCipher(hp)
	if err != nil {
		return quicKeys{}, err
	}
	k := quicKeys{aead: aead, hp: hpBlock}
	copy(k.iv[:], iv)
	return k, nil
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context
// (RFC 8446 section 7.1).
func expandLabel(secret []byte, label string, n int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	return hkdf.Expand(sha256.New, secret, string(info), n)
}

// quicHeader is what the reader takes from a long-header packet.
type quicHeader struct {
	version uint32
	dcid    []byte
	initial bool
	pnOff   int // offset of the (protected) packet number in the packet
	end     int // where the packet ends in the datagram
}

// parseLongHeader reads the long header at the start of b (RFC 9000
// section 17.2). ok is false for anything that is not a long-header packet
// of QUIC version 1 or 2 with a consistent length.
func parseLongHeader(b []byte) (h quicHeader, ok bool) {
	if len(b) < 7 || b[0]&0xc0 != 0xc0 { // header form and fixed bit
		return h, false
	}
	c := cursor{b: b[1:]}
	h.version = binary.BigEndian.Uint32(c.bytes(4))
	typ := b[0] >> 4 & 3
	var retry bool
	switch h.version {
	case quicV1:
		h.initial, retry = typ == 0, typ == 3
	case quicV2:
		h.initial, retry = typ == 1, typ == 0
	default:
		return h, false // version negotiation, or a version carrel does not know
	}
	n := int(c.u8())
	if n > maxConnID {
		return h, false
	}
	h.dcid = c.bytes(n)
	if n = int(c.u8()); n > maxConnID {
		return h, false
	}
	c.skip(n)  // source connection ID
	if retry { // no length field: the Retry packet fills the datagram
		h.end = len(b)
		return h, !c.bad
	}
	if h.initial {
		c.skip(int(min(c.varint(), uint64(len(b)))))
	}
	length := c.varint()
	if c.bad {
		return h, false
	}
	h.pnOff = len(b) - len(c.b)
	if length > uint64(len(c.b)) {
		return h, false
	}
	h.end = h.pnOff + int(length)
	return h, h.end > 0
}

// varint reads a QUIC variable-length integer (RFC 9000 section 16).
func (c *cursor) varint() uint64 {
	if c.bad || len(c.b) == 0 {
		c.bad = true
		return 0
	}
	n := 1 << (c.b[0] >> 6)
	v := c.bytes(n)
	if v == nil {
		return 0
	}
	x := uint64(v[0] & 0x3f)
	for _, b := range v[1:] {
		x = x<<8 | uint64(b)
	}
	return x
}

// quicOpener holds the processor's scratch for decrypting one packet, so
// that opening a packet allocates nothing.
type quicOpener struct {
	pkt   []byte // a copy of the packet, maxQUICPacket bytes
	mask  [aes.BlockSize]byte
	nonce [12]byte
}

// open removes the header protection from a copy of the Initial packet
// pkt and decrypts it with k (RFC 9001 sections 5.3, 5.4). It returns the
// plaintext payload, which lives in o's scratch until the next call.
func (o *quicOpener) open(k *quicKeys, pkt []byte, pnOff int) ([]byte, bool) {
	// The header-protection sample starts 4 bytes after the packet number
	// offset whatever the packet number's length; the AEAD tag is 16.
	if pnOff+4+aes.BlockSize > len(pkt) || len(pkt) > len(o.pkt) {
		return nil, false
	}
	b := o.pkt[:copy(o.pkt, pkt)]
	k.hp.Encrypt(o.mask[:], b[pnOff+4:pnOff+4+aes.BlockSize])
	b[0] ^= o.mask[0] & 0x0f
	pnLen := int(b[0]&3) + 1
	var pn uint64
	for i := range pnLen {
		b[pnOff+i] ^= o.mask[1+i]
		pn = pn<<8 | uint64(b[pnOff+i])
	}
	// A client's Initial packet numbers start at 0 and stay small, so the
	// truncated number is the whole one (RFC 9000 section 17.1).
	o.nonce = k.iv
	for i := range 8 {
		o.nonce[11-i] ^= byte(pn >> (8 * i))
	}
	hdr, ct := b[:pnOff+pnLen], b[pnOff+pnLen:]
	pt, err := k.aead.Open(ct[:0], o.nonce[:], ct, hdr)
	return pt, err == nil
}

// quicConn collects the CRYPTO data of one connection's client Initial
// packets until it holds the whole ClientHello.
type quicConn struct {
	keys    quicKeys
	version uint32
	dcid    [maxConnID]byte
	dcidLen uint8
	gen     uint32 // bumped when the slot is released, so stale flow references miss
	used    bool
	last    int64 // packet time of the last Initial, for eviction
	spans   [quicSpans]span
	nspans  int
	buf     []byte // maxQUICHello bytes
}

// span is a range [lo, hi) of CRYPTO stream offsets held.
type span struct{ lo, hi uint32 }

// quicResult is what collecting a packet's CRYPTO data came to.
type quicResult uint8

const (
	quicMore   quicResult = iota // the ClientHello is not complete yet
	quicHello                    // complete: the hello is in conn.buf
	quicGiveUp                   // not a ClientHello, too big, or too scattered: stop following
)

// frames walks the frames of a decrypted Initial payload (RFC 9000 section
// 19), keeping CRYPTO data. A client's Initial packets carry CRYPTO,
// PADDING, PING and ACK frames (and CONNECTION_CLOSE); anything else ends
// the walk without harm.
func (cn *quicConn) frames(pl []byte) quicResult {
	c := cursor{b: pl}
	for !c.empty() && !c.bad {
		switch typ := c.varint(); typ {
		case 0x00: // PADDING: runs of zero bytes
			for len(c.b) > 0 && c.b[0] == 0 {
				c.b = c.b[1:]
			}
		case 0x01: // PING
		case 0x02, 0x03: // ACK, ACK with ECN counts
			c.varint() // largest acknowledged
			c.varint() // ack delay
			n := c.varint()
			c.varint() // first range
			for i := uint64(0); i < n && !c.bad; i++ {
				c.varint() // gap
				c.varint() // range
			}
			if typ == 0x03 {
				c.varint()
				c.varint()
				c.varint()
			}
		case 0x06: // CRYPTO
			off := c.varint()
			data := c.bytes(int(min(c.varint(), uint64(len(c.b)+1))))
			if c.bad {
				return quicMore
			}
			if r := cn.add(off, data); r != quicMore {
				return r
			}
		default:
			return cn.complete()
		}
	}
	return cn.complete()
}

// add copies CRYPTO data at stream offset off into the buffer.
func (cn *quicConn) add(off uint64, data []byte) quicResult {
	end := off + uint64(len(data))
	if end > maxQUICHello {
		return quicGiveUp // bigger than any ClientHello carrel waits for
	}
	copy(cn.buf[off:end], data)
	lo, hi := uint32(off), uint32(end)
	if lo == hi {
		return quicMore
	}
	// Merge [lo, hi) into the sorted, disjoint spans.
	var out [quicSpans + 1]span
	n, placed := 0, false
	for _, s := range cn.spans[:cn.nspans] {
		switch {
		case s.hi < lo:
			out[n] = s
		case hi < s.lo:
			if !placed {
				out[n], placed = span{lo, hi}, true
				n++
			}
			out[n] = s
		default: // overlapping or adjacent: absorb
			lo, hi = min(lo, s.lo), max(hi, s.hi)
			continue
		}
		n++
	}
	if !placed {
		out[n] = span{lo, hi}
		n++
	}
	if n > quicSpans {
		return quicGiveUp // scattered beyond what a real client sends
	}
	copy(cn.spans[:], out[:n])
	cn.nspans = n
	return quicMore
}

// complete reports whether the CRYPTO stream's prefix holds a whole
// ClientHello.
func (cn *quicConn) complete() quicResult {
	if cn.nspans == 0 || cn.spans[0].lo != 0 {
		return quicMore
	}
	have := int(cn.spans[0].hi)
	if have < 1 {
		return quicMore
	}
	if cn.buf[0] != 0x01 { // handshake type ClientHello
		return quicGiveUp
	}
	if have < 4 {
		return quicMore
	}
	need := 4 + int(uint24(cn.buf[1:4]))
	if need > maxQUICHello {
		return quicGiveUp
	}
	if have < need {
		return quicMore
	}
	return quicHello
}

// hello returns the complete ClientHello message's body.
func (cn *quicConn) hello() []byte { return cn.buf[4 : 4+uint24(cn.buf[1:4])] }

// quicPool holds the connections being followed, allocated once.
type quicPool struct {
	conns []quicConn
	free  []int32
}

func newQUICPool() *quicPool {
	p := &quicPool{conns: make([]quicConn, quicSlots), free: make([]int32, 0, quicSlots)}
	mem := make([]byte, quicSlots*maxQUICHello)
	for i := range p.conns {
		p.conns[i].buf = mem[i*maxQUICHello : (i+1)*maxQUICHello : (i+1)*maxQUICHello]
		p.free = append(p.free, int32(i+1))
	}
	return p
}

// get returns the connection st follows, or nil.
func (p *quicPool) get(st *streamState) *quicConn {
	if st.what != appQUIC || st.slot == 0 {
		return nil
	}
	cn := &p.conns[st.slot-1]
	if !cn.used || cn.gen != st.next {
		return nil // the slot was taken for another connection
	}
	return cn
}

// take returns a slot for a new connection, evicting the least recently
// active one when all are in use (evicted reports that).
func (p *quicPool) take() (slot int32, evicted bool) {
	if n := len(p.free); n > 0 {
		slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		oldest := 0
		for i := range p.conns {
			if p.conns[i].last < p.conns[oldest].last {
				oldest = i
			}
		}
		slot, evicted = int32(oldest+1), true
		p.conns[oldest].gen++
	}
	cn := &p.conns[slot-1]
	cn.used, cn.nspans = true, 0
	return slot, evicted
}

// release frees the slot st follows, if it still holds st's connection.
func (p *quicPool) release(st *streamState) {
	if cn := p.get(st); cn != nil {
		cn.used = false
		cn.gen++
		cn.keys = quicKeys{}
		p.free = append(p.free, st.slot)
	}
	*st = streamState{}
}

// quicDatagram looks for client Initial packets in a UDP datagram that
// starts with a long header, and follows their CRYPTO data to the
// ClientHello.
func (p *processor) quicDatagram(f *flow, d uint8, pk *pkt, ts time.Time) {
	st := &f.stream
	if st.what == appQUICDone || st.what == appQUIC && st.dir != d {
		return // name found or given up; or the server's side
	}
	for b := pk.payload; len(b) > 0; {
		h, ok := parseLongHeader(b)
		if !ok {
			return // a short header or garbage: the rest is not readable
		}
		if h.initial && p.quicInitial(st, d, b[:h.end], &h, pk, ts) {
			return
		}
		b = b[h.end:] // coalesced packets (RFC 9000 section 12.2)
	}
}

// quicInitial decrypts one Initial packet and collects its CRYPTO data.
// It reports true when the flow needs no more looking at.
func (p *processor) quicInitial(st *streamState, d uint8, pkt []byte, h *quicHeader, pk *pkt, ts time.Time) bool {
	cn := p.quic.get(st)
	var pl []byte
	ok := false
	if cn != nil && cn.version == h.version {
		// Later Initials of a connection keep the keys of its first
		// Destination Connection ID, even after the server chose another.
		pl, ok = p.quicOpen.open(&cn.keys, pkt, h.pnOff)
	}
	if !ok {
		if cn != nil && cn.version == h.version && bytes.Equal(cn.dcid[:cn.dcidLen], h.dcid) {
			return false // same keys: damaged, or not the client's
		}
		if st.what == appNone && st.next >= maxQUICFailures {
			st.what = appQUICDone
			return true
		}
		keys, err := clientInitialKeys(h.version, h.dcid)
		p.quicDerived++
		if err != nil {
			return false
		}
		if pl, ok = p.quicOpen.open(&keys, pkt, h.pnOff); !ok {
			// A server's Initial, or not QUIC at all: nothing read. A
			// flow that keeps sending such packets stops costing key
			// derivations.
			if st.what == appNone {
				st.next++
			}
			return false
		}
		// The first client Initial of a connection: follow it.
		p.quic.release(st)
		slot, evicted := p.quic.take()
		if evicted {
			p.st.reasmFull++
		}
		cn = &p.quic.conns[slot-1]
		cn.keys, cn.version, cn.dcidLen = keys, h.version, uint8(copy(cn.dcid[:], h.dcid))
		*st = streamState{slot: slot, dir: d, what: appQUIC, next: cn.gen}
	}
	cn.last = ts.UnixNano()
	switch cn.frames(pl) {
	case quicMore:
		return false
	case quicHello:
		if sni, r, ech := helloBody(cn.hello()); r == helloSNI {
			p.emitSNI(sni, ech, true, pk, ts)
		}
	}
	p.quic.release(st)
	st.what = appQUICDone
	return true
}
