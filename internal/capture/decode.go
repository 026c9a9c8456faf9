package capture

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// processor turns packets into records. It runs on one goroutine (the
// capture goroutine, or the caller of DecodeFile) and owns everything in
// it; after setup it does not allocate per packet.
type processor struct {
	mode    Mode
	snaplen int
	out     *batcher

	// parsers by first layer: [0] Ethernet, [1] IPv4, [2] IPv6, [3]
	// Linux cooked v1. Link types with a fixed header in front of IP
	// (raw, BSD loopback, Linux cooked v2) start at IPv4 or IPv6.
	parsers [4]*gopacket.DecodingLayerParser
	link    linkKind
	linkT   layers.LinkType // the link type link was set for
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	ext     layers.IPv6ExtensionSkipper
	tcp     layers.TCP
	udp     layers.UDP
	decoded []gopacket.LayerType

	flows       *flowTable
	idle        int64 // flow idle timeout, ns
	nextSweep   int64
	pool        *reasmPool
	quic        *quicPool
	quicOpen    quicOpener
	quicDerived uint64            // key derivations done, for tests
	name        [maxNameText]byte // DNS name in presentation form
	txt         [maxNameText]byte // SNI or Host in presentation form
	hello       []byte            // TLS records joined
	emitFn      func(*flow)       // p.emitFlow, bound once so sweeps do not allocate

	st counters
}

// counters are the processor's own; the engine publishes them.
type counters struct {
	packets, bytes, errors, evicted, reasmFull uint64
}

// pkt is the part of a decoded packet the extractors use.
type pkt struct {
	proto    uint8
	src, dst netip.Addr
	sport    uint16
	dport    uint16
	haveIP   bool
	l4       bool // TCP or UDP header decoded
	payload  []byte
	seq      uint32
	syn, ack bool // TCP flags
}

func newProcessor(mode Mode, link layers.LinkType, snaplen int, flowIdle time.Duration, maxFlows int, seed uint64, out *batcher) (*processor, error) {
	p := &processor{mode: mode, snaplen: snaplen, out: out, idle: int64(flowIdle)}
	if mode == ModePackets {
		return p, nil
	}
	if err := p.setLink(link); err != nil {
		return nil, err
	}
	dl := []gopacket.DecodingLayer{&p.eth, &p.sll, &p.dot1q, &p.ip4, &p.ip6, &p.ext, &p.tcp, &p.udp}
	// A sparse array, not gopacket's default map: a layer lookup is then
	// an index, which halves the cost of decoding a small packet.
	var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, d := range dl {
		dlc = dlc.Put(d)
	}
	for i, f := range [4]gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeIPv6, layers.LayerTypeLinuxSLL} {
		p.parsers[i] = gopacket.NewDecodingLayerParser(f)
		p.parsers[i].SetDecodingLayerContainer(dlc)
		// Unknown layers (ARP, ICMP, SCTP, …) end decoding quietly,
		// without the error value DecodeLayers would otherwise allocate.
		p.parsers[i].IgnoreUnsupported = true
	}
	p.decoded = make([]gopacket.LayerType, 0, 16)
	p.flows = newFlowTable(maxFlows, seed)
	p.pool = newReasmPool()
	p.quic = newQUICPool()
	p.quicOpen.pkt = make([]byte, maxQUICPacket)
	p.hello = make([]byte, 0, maxHello)
	p.emitFn = p.emitFlow
	return p, nil
}

// packet handles one packet. data is only borrowed: nothing of it is kept
// past the call except the bytes copied into a reassembly buffer.
func (p *processor) packet(data []byte, ci gopacket.CaptureInfo) {
	p.st.packets++
	p.st.bytes += uint64(ci.Length)
	ts := ci.Timestamp.UnixNano()
	if p.mode == ModePackets {
		p.out.addBlock(data, ts, ci.Length, p.snaplen)
		return
	}
	var pk pkt
	if !p.decode(data, &pk) {
		p.st.errors++
		return
	}
	if !pk.haveIP {
		return // ARP, LLDP, …: not IP traffic, nothing to record
	}
	f, d := p.account(&pk, ts, ci.Length)
	switch {
	case pk.proto == protoUDP && pk.l4 && (pk.sport == 53 || pk.dport == 53):
		if q, ok := parseDNS(pk.payload, p.name[:]); ok {
			p.emitDNS(&q, &pk, ci.Timestamp)
		}
	case pk.proto == protoTCP && pk.l4 && len(pk.payload) > 0:
		p.tcpPayload(f, d, &pk, ci.Timestamp)
	case pk.proto == protoUDP && pk.l4 && len(pk.payload) >= quicMinDatagram && pk.payload[0]&0xc0 == 0xc0:
		// A long header in a datagram a client's Initial could be in.
		p.quicDatagram(f, d, &pk, ci.Timestamp)
	}
	p.tick(ts)
}

// linkKind is how the processor finds the IP packet in a frame.
type linkKind uint8

const (
	linkEthernet linkKind = iota
	linkSLL               // Linux cooked v1 (tcpdump -i any before libpcap 1.10)
	linkRaw               // bare IP: the version nibble says which
	linkNull              // BSD loopback (DLT_NULL, DLT_LOOP): a 4-byte address family
	linkSLL2              // Linux cooked v2: a 20-byte header led by the EtherType
)

// linkOf maps a pcap link type to the way the processor decodes it.
func linkOf(lt layers.LinkType) (linkKind, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return linkEthernet, true
	case layers.LinkTypeLinuxSLL:
		return linkSLL, true
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12: // 12: DLT_RAW on some systems
		return linkRaw, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return linkNull, true
	case layers.LinkTypeLinuxSLL2:
		return linkSLL2, true
	}
	return 0, false
}

// setLink makes the processor decode frames of link type lt (a pcapng
// file may mix interfaces of several types).
func (p *processor) setLink(lt layers.LinkType) error {
	k, ok := linkOf(lt)
	if !ok {
		return unsupportedLink(lt, int(lt))
	}
	p.link, p.linkT = k, lt
	return nil
}

// Address families in a BSD loopback header. AF_INET6 differs by system.
const (
	afInet       = 2
	afInet6Linux = 10
	afInet6BSD   = 24 // NetBSD, OpenBSD
	afInet6Free  = 28 // FreeBSD, DragonFly
	afInet6Apple = 30 // macOS, iOS
)

// decode runs the layer parser and copies out what the extractors need.
// It reports false for a packet that is malformed at a layer we decode.
func (p *processor) decode(data []byte, pk *pkt) bool {
	var parser *gopacket.DecodingLayerParser
	ipv := byte(0) // for links with a fixed header: the IP version found
	switch p.link {
	case linkEthernet:
		parser = p.parsers[0]
	case linkSLL:
		parser = p.parsers[3]
	case linkRaw:
		if len(data) == 0 {
			return false
		}
		ipv = data[0] >> 4
	case linkNull:
		if len(data) < 4 {
			return false
		}
		// DLT_NULL is in the byte order of the host that captured,
		// DLT_LOOP always big-endian; families are small numbers, so the
		// half that is zero tells the order.
		fam := binary.LittleEndian.Uint32(data)
		if fam&0xffff == 0 {
			fam = bits.ReverseBytes32(fam)
		}
		switch fam {
		case afInet:
			ipv = 4
		case afInet6Linux, afInet6BSD, afInet6Free, afInet6Apple:
			ipv = 6
		default:
			return true // not IP: nothing to record
		}
		data = data[4:]
	case linkSLL2:
		if len(data) < 20 {
			return false
		}
		switch layers.EthernetType(binary.BigEndian.Uint16(data)) {
		case layers.EthernetTypeIPv4:
			ipv = 4
		case layers.EthernetTypeIPv6:
			ipv = 6
		default:
			return true
		}
		data = data[20:]
	}
	if parser == nil {
		switch ipv {
		case 4:
			parser = p.parsers[1]
		case 6:
			parser = p.parsers[2]
		default:
			return false
		}
	}
	err := parser.DecodeLayers(data, &p.decoded)
	for _, t := range p.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			pk.haveIP = true
			pk.proto = uint8(p.ip4.Protocol)
			pk.src = netip.AddrFrom4([4]byte(p.ip4.SrcIP.To4()))
			pk.dst = netip.AddrFrom4([4]byte(p.ip4.DstIP.To4()))
		case layers.LayerTypeIPv6:
			pk.haveIP = true
			pk.proto = uint8(p.ip6.NextHeader)
			pk.src = netip.AddrFrom16([16]byte(p.ip6.SrcIP))
			pk.dst = netip.AddrFrom16([16]byte(p.ip6.DstIP))
		case layers.LayerTypeTCP:
			pk.l4 = true
			pk.sport, pk.dport = uint16(p.tcp.SrcPort), uint16(p.tcp.DstPort)
			pk.seq = p.tcp.Seq
			pk.syn, pk.ack = p.tcp.SYN, p.tcp.ACK
			pk.payload = p.tcp.Payload
		case layers.LayerTypeUDP:
			pk.l4 = true
			pk.sport, pk.dport = uint16(p.udp.SrcPort), uint16(p.udp.DstPort)
			pk.payload = p.udp.Payload
		default:
			if layers.LayerClassIPv6Extension.Contains(t) {
				pk.proto = uint8(p.ext.NextHeader)
			}
		}
	}
	return err == nil
}

// account adds the packet to its flow and returns the flow and the
// direction (0: sent by the flow's a side).
func (p *processor) account(pk *pkt, ts int64, length int) (*flow, uint8) {
	var k flowKey
	k.proto = pk.proto
	k.v4 = pk.src.Is4()
	src, dst := pk.src.As16(), pk.dst.As16()
	d := uint8(0)
	if c := compareEndpoint(&src, pk.sport, &dst, pk.dport); c <= 0 {
		k.a, k.aPort, k.b, k.bPort = src, pk.sport, dst, pk.dport
	} else {
		k.a, k.aPort, k.b, k.bPort = dst, pk.dport, src, pk.sport
		d = 1
	}
	f, created, ev := p.flows.lookup(&k)
	if ev.used {
		p.st.evicted++
		p.emitFlow(&ev)
	}
	if created {
		f.first, f.last = ts, ts
		f.aFirst = (d == 0) == senderOpened(pk)
	}
	f.last = max(f.last, ts)
	f.pkts[d]++
	f.bytes[d] += uint64(length)
	return f, d
}

// senderOpened guesses whether the sender of a flow's first packet seen
// is the side that opened it, so a flow keeps its direction when it is
// picked up again after a segment rotation: a TCP SYN says so exactly;
// otherwise the side on a well-known port (below 1024) whose peer is not
// is taken for the server.
func senderOpened(pk *pkt) bool {
	if pk.proto == protoTCP && pk.syn {
		return !pk.ack
	}
	return !(pk.sport < 1024 && pk.dport >= 1024)
}

func compareEndpoint(a *[16]byte, ap uint16, b *[16]byte, bp uint16) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return int(ap) - int(bp)
}

// tcpPayload feeds a TCP segment to the extractor its start calls for, or
// to the reassembly this flow is already doing.
func (p *processor) tcpPayload(f *flow, d uint8, pk *pkt, ts time.Time) {
	st, pl := &f.stream, pk.payload
	if st.slot != 0 && st.dir == d {
		switch {
		case pk.seq == st.next:
			buf := p.pool.bufs[st.slot-1]
			buf = append(buf, pl[:min(len(pl), cap(buf)-len(buf))]...)
			p.pool.bufs[st.slot-1] = buf
			st.next += uint32(len(pl))
			if !p.extract(st.what, buf, pk, ts) || len(buf) == cap(buf) {
				p.pool.release(st)
			}
		case seqBefore(pk.seq, st.next):
			// a retransmission of bytes already held
		default:
			p.pool.release(st) // a gap: give up rather than guess
		}
		return
	}
	what := appNone
	switch {
	case pk.sport == 53 || pk.dport == 53:
		what = appDNS
	case pl[0] == 0x16:
		what = appTLS
	case isHTTPMethod(pl):
		what = appHTTP
	}
	if what == appNone || !p.extract(what, pl, pk, ts) || st.slot != 0 {
		return
	}
	slot := p.pool.take()
	if slot == 0 {
		p.st.reasmFull++
		return
	}
	*st = streamState{slot: slot, dir: d, what: what, next: pk.seq + uint32(len(pl))}
	p.pool.bufs[slot-1] = append(p.pool.bufs[slot-1], pl[:min(len(pl), maxHello)]...)
}

// extract runs one extractor over the start of a stream, emits what it
// finds and reports whether it wants more bytes.
func (p *processor) extract(what uint8, b []byte, pk *pkt, ts time.Time) (more bool) {
	switch what {
	case appTLS:
		sni, r, ech := clientHelloSNI(b, p.hello)
		if r == helloSNI {
			p.emitSNI(sni, ech, false, pk, ts)
		}
		return r == helloMore
	case appHTTP:
		host, r := requestHost(b)
		if r == httpHost {
			p.emitHost(host, pk, ts)
		}
		return r == httpMore
	case appDNS: // DNS over TCP: a two-byte length, then the message
		if len(b) < 2 {
			return true
		}
		n, msg := int(binary.BigEndian.Uint16(b)), b[2:]
		msg = msg[:min(len(msg), n)]
		if q, ok := parseDNS(msg, p.name[:]); ok {
			p.emitDNS(&q, pk, ts)
			return false
		}
		return len(msg) < n
	}
	return false
}

// flowActive ends the record of a flow that has lasted this long even if
// it is busy (NetFlow's "active timeout"): a long download still shows up
// within minutes, and a crash loses at most this much of it.
const flowActive = int64(2 * time.Minute)

// tick sweeps idle flows out at most once a second of packet (or wall)
// time.
func (p *processor) tick(now int64) {
	if p.flows == nil || now < p.nextSweep {
		return
	}
	p.nextSweep = now + int64(time.Second)
	p.flows.sweep(now-p.idle, now-flowActive, p.emitFn)
}

// flushFlows emits every flow and empties the table (segment rotation and
// stop).
func (p *processor) flushFlows() {
	if p.flows != nil {
		p.flows.sweep(math.MaxInt64, math.MinInt64, p.emitFn)
	}
}

func (p *processor) emitFlow(f *flow) {
	a, b := keyAddr(&f.key.a, f.key.v4), keyAddr(&f.key.b, f.key.v4)
	r := Record{Kind: KindFlow, TS: time.Unix(0, f.last), Proto: f.key.proto,
		First: time.Unix(0, f.first), Last: time.Unix(0, f.last)}
	r.Src, r.SrcPort, r.Dst, r.DstPort = a, f.key.aPort, b, f.key.bPort
	r.SrcPackets, r.SrcBytes, r.DstPackets, r.DstBytes = f.pkts[0], f.bytes[0], f.pkts[1], f.bytes[1]
	if !f.aFirst {
		r.Src, r.SrcPort, r.Dst, r.DstPort = b, f.key.bPort, a, f.key.aPort
		r.SrcPackets, r.SrcBytes, r.DstPackets, r.DstBytes = f.pkts[1], f.bytes[1], f.pkts[0], f.bytes[0]
	}
	p.out.addRecord(&r)
	if f.stream.what == appQUIC {
		p.quic.release(&f.stream)
	} else {
		p.pool.release(&f.stream)
	}
}

func keyAddr(a *[16]byte, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(*a)
}

func (p *processor) emitDNS(q *dnsQuestion, pk *pkt, ts time.Time) {
	r := p.tupleRecord(KindDNS, pk, ts)
	r.Name = borrowString(q.name)
	r.QType, r.RCode, r.Response = q.qtype, q.rcode, q.response
	p.out.addRecord(&r)
}

// maxHostBytes bounds an SNI or Host value kept: a DNS name is at most
// 253 characters, so this loses nothing real.
const maxHostBytes = 255

// emitSNI records a ClientHello's server name; quic says it came in QUIC
// Initial packets, ech that the hello offers Encrypted Client Hello.
func (p *processor) emitSNI(sni []byte, ech, quic bool, pk *pkt, ts time.Time) {
	r := p.tupleRecord(KindTLS, pk, ts)
	r.SNI = borrowString(appendPrintable(p.txt[:0], sni[:min(len(sni), maxHostBytes)]))
	r.QUIC, r.ECH = quic, ech
	p.out.addRecord(&r)
}

func (p *processor) emitHost(host []byte, pk *pkt, ts time.Time) {
	r := p.tupleRecord(KindHTTP, pk, ts)
	r.Host = borrowString(appendPrintable(p.txt[:0], host[:min(len(host), maxHostBytes)]))
	p.out.addRecord(&r)
}

func (p *processor) tupleRecord(k Kind, pk *pkt, ts time.Time) Record {
	return Record{Kind: k, TS: ts, Proto: pk.proto, Src: pk.src, SrcPort: pk.sport, Dst: pk.dst, DstPort: pk.dport}
}

// borrowString views b as a string without copying. The record holding it
// is encoded at once and never kept, so b outlives every use.
func borrowString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
