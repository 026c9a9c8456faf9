package capture

import "encoding/binary"

// dnsQuestion is what the DNS extractor keeps of a message: the first
// question and the header's response code. Answers, authority and
// additional sections are never read.
type dnsQuestion struct {
	name     []byte // presentation form, in the caller's scratch buffer
	qtype    uint16
	rcode    uint8
	response bool
}

// maxNameText bounds a name in presentation form: 255 wire bytes, each at
// worst written as \DDD.
const maxNameText = 255 * 4

// maxPointers bounds compression pointers followed, so a loop of pointers
// ends quickly.
const maxPointers = 16

// parseDNS reads the first question of the DNS message msg, writing the
// name into scratch (which needs maxNameText bytes of capacity). ok is
// false for anything that is not a well-formed question; parseDNS never
// reads outside msg and never allocates.
func parseDNS(msg, scratch []byte) (q dnsQuestion, ok bool) {
	if len(msg) < 12 {
		return q, false
	}
	flags := binary.BigEndian.Uint16(msg[2:4])
	if binary.BigEndian.Uint16(msg[4:6]) == 0 { // qdcount
		return q, false
	}
	q.response = flags&0x8000 != 0
	q.rcode = uint8(flags & 0x000f)
	name, end, ok := readName(msg, 12, scratch[:0])
	if !ok || end+4 > len(msg) {
		return q, false
	}
	q.name = name
	q.qtype = binary.BigEndian.Uint16(msg[end : end+2])
	return q, true
}

// readName decodes the name at msg[off:] into out in presentation form and
// returns the offset just after it (after the first pointer, if any).
func readName(msg []byte, off int, out []byte) (name []byte, end int, ok bool) {
	end = -1
	wire := 0 // wire length so far, bounded by 255 as RFC 1035 says
	for jumps := 0; ; {
		if off >= len(msg) {
			return nil, 0, false
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				if end < 0 {
					end = off + 1
				}
				if len(out) == 0 {
					out = append(out, '.')
				}
				return out, end, true
			}
			if off+1+l > len(msg) {
				return nil, 0, false
			}
			if wire += l + 1; wire > 255 {
				return nil, 0, false
			}
			if len(out) > 0 {
				out = append(out, '.')
			}
			out = appendLabel(out, msg[off+1:off+1+l])
			off += 1 + l
		case 0xc0:
			if off+2 > len(msg) {
				return nil, 0, false
			}
			if jumps++; jumps > maxPointers {
				return nil, 0, false
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
		default: // 0x40 and 0x80: extended label types, not used in questions
			return nil, 0, false
		}
	}
}

// appendLabel writes one label in presentation form: '.' and '\' escaped
// with a backslash, bytes outside printable ASCII as \DDD.
func appendLabel(b, label []byte) []byte {
	for _, c := range label {
		switch {
		case c == '.' || c == '\\':
			b = append(b, '\\', c)
		case c <= 0x20 || c > 0x7e:
			b = appendDDD(b, c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendPrintable writes a host name from TLS or HTTP the same way, except
// that '.' is a plain separator there.
func appendPrintable(b, s []byte) []byte {
	for _, c := range s {
		if c <= 0x20 || c > 0x7e || c == '\\' {
			b = appendDDD(b, c)
		} else {
			b = append(b, c)
		}
	}
	return b
}

func appendDDD(b []byte, c byte) []byte {
	return append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
}
