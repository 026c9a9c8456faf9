package capture

import (
	"strconv"
	"strings"
)

// DNS type and rcode mnemonics used in the wire form. Unknown values are
// written as TYPE<n> / RCODE<n> (RFC 3597 style), so the table may grow
// without changing what older records mean.
var qtypeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 43: "DS",
	46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 52: "TLSA", 64: "SVCB", 65: "HTTPS",
	252: "AXFR", 255: "ANY", 257: "CAA",
}

var rcodeNames = [...]string{
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
}

func appendQType(b []byte, t uint16) []byte {
	if n, ok := qtypeNames[t]; ok {
		return append(b, n...)
	}
	return strconv.AppendUint(append(b, "TYPE"...), uint64(t), 10)
}

func appendRCode(b []byte, c uint8) []byte {
	if int(c) < len(rcodeNames) {
		return append(b, rcodeNames[c]...)
	}
	return strconv.AppendUint(append(b, "RCODE"...), uint64(c), 10)
}

// qtypeByName reverses qtypeNames for the decoder, which reads a type
// per DNS record.
var qtypeByName = func() map[string]uint16 {
	m := make(map[string]uint16, len(qtypeNames))
	for t, n := range qtypeNames {
		m[n] = t
	}
	return m
}()

func parseQType(s string) (uint16, bool) {
	if t, ok := qtypeByName[s]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(s, "TYPE"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

func parseRCode(s string) (uint8, bool) {
	for i, v := range rcodeNames {
		if v == s {
			return uint8(i), true
		}
	}
	if n, ok := strings.CutPrefix(s, "RCODE"); ok {
		v, err := strconv.ParseUint(n, 10, 8)
		return uint8(v), err == nil
	}
	return 0, false
}

func parseProto(s string) (uint8, bool) {
	switch s {
	case "tcp":
		return protoTCP, true
	case "udp":
		return protoUDP, true
	case "icmp":
		return protoICMP, true
	case "icmpv6":
		return protoICMPv6, true
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return uint8(v), err == nil
}
