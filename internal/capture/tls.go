package capture

import "encoding/binary"

// helloResult is what a look at the start of a client's stream found.
type helloResult uint8

const (
	helloNotTLS helloResult = iota // not a TLS ClientHello: stop looking
	helloMore                      // a ClientHello so far, but cut short: wait for more bytes
	helloNoSNI                     // a complete ClientHello without a server name
	helloSNI                       // found; the name is returned
)

// maxHello bounds the ClientHello reassembled per flow: one maximal TLS
// record plus its header. Real ClientHellos are a few hundred bytes to
// ~2 KiB (post-quantum key shares); anything longer is not waited for.
const maxHello = 16384 + 5

// clientHelloSNI reads the server_name of a TLS ClientHello at the start of
// stream, and whether the hello carries encrypted_client_hello. A handshake
// message spread over several TLS records is joined in scratch (capacity
// maxHello). It never reads outside its inputs and never allocates.
func clientHelloSNI(stream, scratch []byte) (sni []byte, r helloResult, ech bool) {
	if len(stream) < 1 || stream[0] != 0x16 {
		return nil, helloNotTLS, false
	}
	if len(stream) >= 6 && stream[5] != 0x01 { // handshake type ClientHello
		return nil, helloNotTLS, false
	}
	if len(stream) >= 3 && stream[1] != 0x03 { // record version 3.x
		return nil, helloNotTLS, false
	}
	msg := scratch[:0]
	for off := 0; ; {
		if off+5 > len(stream) {
			return nil, helloMore, false
		}
		if stream[off] != 0x16 || stream[off+1] != 0x03 {
			return nil, helloNotTLS, false
		}
		n := int(binary.BigEndian.Uint16(stream[off+3:]))
		if n == 0 || n > 16384+2048 {
			return nil, helloNotTLS, false
		}
		frag := stream[off+5:]
		if len(frag) > n {
			frag = frag[:n]
		}
		if off == 0 && len(frag) >= 4 && 4+int(uint24(frag[1:])) <= len(frag) {
			// The common case: the whole message in the first record, no copy.
			return helloBody(frag[4 : 4+uint24(frag[1:])])
		}
		if len(msg)+len(frag) > cap(msg) {
			return nil, helloNotTLS, false // bigger than we are willing to hold
		}
		msg = append(msg, frag...)
		if len(msg) >= 4 {
			if want := 4 + int(uint24(msg[1:])); len(msg) >= want {
				return helloBody(msg[4:want])
			} else if want > cap(msg) {
				return nil, helloNotTLS, false
			}
		}
		if len(frag) < n {
			return nil, helloMore, false
		}
		off += 5 + n
	}
}

func uint24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// extECH is the encrypted_client_hello extension (RFC 9849, draft-ietf-tls-esni).
const extECH = 0xfe0d

// helloBody walks a complete ClientHello body through its extensions for
// server_name and encrypted_client_hello.
func helloBody(b []byte) (sni []byte, r helloResult, ech bool) {
	c := cursor{b: b}
	c.skip(2 + 32)       // legacy_version, random
	c.skip(int(c.u8()))  // legacy_session_id
	c.skip(int(c.u16())) // cipher_suites
	c.skip(int(c.u8()))  // legacy_compression_methods
	if c.bad {
		return nil, helloNotTLS, false
	}
	if c.empty() {
		return nil, helloNoSNI, false // no extensions at all (TLS 1.0-era hello)
	}
	// Extensions may come in any order (browsers shuffle them): walk
	// them all.
	ext := cursor{b: c.bytes(int(c.u16()))}
	for !ext.bad && !ext.empty() {
		typ := ext.u16()
		data := ext.bytes(int(ext.u16()))
		if ext.bad {
			break
		}
		switch {
		case typ == extECH:
			ech = true
		case typ == 0 && sni == nil: // server_name
			list := cursor{b: data}
			list = cursor{b: list.bytes(int(list.u16()))}
			for !list.bad && !list.empty() && sni == nil {
				nameType := list.u8()
				name := list.bytes(int(list.u16()))
				if !list.bad && nameType == 0 && len(name) > 0 { // host_name
					sni = name
				}
			}
			if sni == nil {
				return nil, helloNotTLS, false
			}
		}
	}
	switch {
	case sni != nil:
		return sni, helloSNI, ech // a damaged extension after the name loses nothing found
	case ext.bad:
		return nil, helloNotTLS, false
	}
	return nil, helloNoSNI, ech
}

// cursor reads big-endian fields and remembers if it ran off the end, so
// a parse reads straight through and checks once.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) empty() bool { return len(c.b) == 0 }

func (c *cursor) bytes(n int) []byte {
	if c.bad || n > len(c.b) {
		c.bad = true
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) skip(n int) { c.bytes(n) }

func (c *cursor) u8() uint8 {
	if v := c.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) u16() uint16 {
	if v := c.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
