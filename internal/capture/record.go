package capture

import (
	"net/netip"
	"strconv"
	"time"
)

// Kind says what a Record describes.
type Kind uint8

// The record kinds. Their names are part of the wire form.
const (
	KindFlow Kind = iota + 1 // a flow's 5-tuple and counters
	KindDNS                  // a DNS question (query or response)
	KindTLS                  // the SNI of a TLS ClientHello
	KindHTTP                 // the Host header of an HTTP/1.x request
)

var kindNames = [...]string{KindFlow: "flow", KindDNS: "dns", KindTLS: "tls", KindHTTP: "http"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// Record is one metadata record: the only things metadata mode ever keeps
// of the traffic.
//
// Wire form (JSON Lines, one object per line, written by AppendJSON). Keys
// appear in this order; these keys and their meaning may never change,
// because sealed segments written today are read back by the court-order
// export years later:
//
//	every kind: kind, ts, proto, src, sport, dst, dport
//	flow:       first, last, src_packets, src_bytes, dst_packets, dst_bytes
//	dns:        name, qtype, rcode, response
//	tls:        sni, then quic and ech only when true
//	http:       host
//
// kind is "flow", "dns", "tls" or "http". ts, first and last are RFC 3339 in
// UTC with nine fractional digits. proto is "tcp", "udp", "icmp", "icmpv6" or
// the IP protocol number in decimal. src/sport is the sender of the packet
// the record came from; for flows it is the side that opened the flow (the
// sender of the TCP SYN; without one seen, the first sender unless it sent
// from a port below 1024 to one above), and src_* count what that side sent. A flow record covers the flow
// from first to last within one segment: a flow that outlives a segment
// appears again in the next one. qtype is the type mnemonic ("A", "AAAA",
// …) or "TYPE<n>"; rcode the mnemonic ("NOERROR", "NXDOMAIN", …) or
// "RCODE<n>". A tls record's sni is the server_name of a TLS ClientHello;
// "quic":true says the hello came in QUIC Initial packets (HTTP/3; proto
// is then "udp"), "ech":true that it carries the encrypted_client_hello
// extension: the connection may use Encrypted Client Hello, and sni may
// then be the provider's public name rather than the site (browsers also
// send the extension as a decoy, "GREASE", where the site has no ECH, and
// on the wire the two look alike). Text fields (name, sni, host) are printable ASCII: any other
// byte is written as \DDD (decimal), as in DNS presentation format. New
// keys may be added after the existing ones; readers ignore keys they do
// not know.
type Record struct {
	Kind    Kind
	TS      time.Time // time of the packet that produced it (flows: last packet)
	Proto   uint8     // IP protocol number
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16

	// flow
	First, Last          time.Time
	SrcPackets, SrcBytes uint64
	DstPackets, DstBytes uint64

	// dns
	Name     string
	QType    uint16
	RCode    uint8
	Response bool

	// tls
	SNI  string
	QUIC bool // the ClientHello came in QUIC Initial packets
	ECH  bool // the ClientHello offers Encrypted Client Hello

	// http
	Host string
}

// IP protocol numbers with names in the wire form.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// AppendJSON appends r's wire form, with its final '\n', to b. It does not
// allocate when b has room, so the capture path can use it; it does not
// keep r.
func AppendJSON(b []byte, r *Record) []byte {
	b = append(b, `{"kind":"`...)
	b = append(b, r.Kind.String()...)
	b = append(b, `","ts":"`...)
	b = appendTime(b, r.TS)
	b = append(b, `","proto":"`...)
	b = appendProto(b, r.Proto)
	b = append(b, `","src":"`...)
	b = appendAddr(b, r.Src)
	b = append(b, `","sport":`...)
	b = strconv.AppendUint(b, uint64(r.SrcPort), 10)
	b = append(b, `,"dst":"`...)
	b = appendAddr(b, r.Dst)
	b = append(b, `","dport":`...)
	b = strconv.AppendUint(b, uint64(r.DstPort), 10)
	switch r.Kind {
	case KindFlow:
		b = append(b, `,"first":"`...)
		b = appendTime(b, r.First)
		b = append(b, `","last":"`...)
		b = appendTime(b, r.Last)
		b = append(b, `","src_packets":`...)
		b = strconv.AppendUint(b, r.SrcPackets, 10)
		b = append(b, `,"src_bytes":`...)
		b = strconv.AppendUint(b, r.SrcBytes, 10)
		b = append(b, `,"dst_packets":`...)
		b = strconv.AppendUint(b, r.DstPackets, 10)
		b = append(b, `,"dst_bytes":`...)
		b = strconv.AppendUint(b, r.DstBytes, 10)
	case KindDNS:
		b = append(b, `,"name":"`...)
		b = appendText(b, r.Name)
		b = append(b, `","qtype":"`...)
		b = appendQType(b, r.QType)
		b = append(b, `","rcode":"`...)
		b = appendRCode(b, r.RCode)
		b = append(b, `","response":`...)
		b = strconv.AppendBool(b, r.Response)
	case KindTLS:
		b = append(b, `,"sni":"`...)
		b = appendText(b, r.SNI)
		b = append(b, '"')
		if r.QUIC {
			b = append(b, `,"quic":true`...)
		}
		if r.ECH {
			b = append(b, `,"ech":true`...)
		}
	case KindHTTP:
		b = append(b, `,"host":"`...)
		b = appendText(b, r.Host)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// tsLayout has a fixed width so that records sort and diff cleanly.
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, tsLayout) }

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return b
	}
	return a.Unmap().AppendTo(b)
}

func appendProto(b []byte, p uint8) []byte {
	switch p {
	case protoTCP:
		return append(b, "tcp"...)
	case protoUDP:
		return append(b, "udp"...)
	case protoICMP:
		return append(b, "icmp"...)
	case protoICMPv6:
		return append(b, "icmpv6"...)
	}
	return strconv.AppendUint(b, uint64(p), 10)
}

// appendText writes s as the inside of a JSON string in presentation form:
// printable ASCII stays, '"' and '\' are JSON-escaped, every other byte
// becomes \DDD (itself JSON-escaped as \\DDD). The output is therefore
// always ASCII and valid JSON, whatever bytes came off the wire.
func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '\\', '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			b = append(b, c)
		}
	}
	return b
}
