package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capFile builds capture files by hand, in either byte order, so the
// reader is tested on what other systems write, not only on what pcapgo
// writes.
type capFile struct {
	order byteOrder
	b     []byte
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (c *capFile) u16(v uint16) { c.b = c.order.AppendUint16(c.b, v) }
func (c *capFile) u32(v uint32) { c.b = c.order.AppendUint32(c.b, v) }

// pcapFile returns a pcap of the given link type with one record per
// packet, timestamps t0+i ms, in microseconds (nano false) or nanoseconds.
func pcapFile(order byteOrder, nano bool, link layers.LinkType, pkts ...[]byte) []byte {
	c := &capFile{order: order}
	magic := uint32(0xA1B2C3D4)
	if nano {
		magic = 0xA1B23C4D
	}
	c.u32(magic)
	c.u16(2)
	c.u16(4)
	c.u32(0)
	c.u32(0)
	c.u32(65535)
	c.u32(uint32(link))
	for i, p := range pkts {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		c.u32(uint32(ts.Unix()))
		if nano {
			c.u32(uint32(ts.Nanosecond()))
		} else {
			c.u32(uint32(ts.Nanosecond() / 1000))
		}
		c.u32(uint32(len(p)))
		c.u32(uint32(len(p)))
		c.b = append(c.b, p...)
	}
	return c.b
}

// ngIface describes an interface of a pcapng built by pcapngFile.
type ngIface struct {
	link   layers.LinkType
	tsres  byte // if_tsresol, 0: none (microseconds)
	offset int64
}

type ngPacket struct {
	iface int
	ts    time.Time
	data  []byte
}

func (c *capFile) block(typ uint32, body []byte) {
	body = append(body, make([]byte, pad4(len(body)))...)
	c.u32(typ)
	c.u32(uint32(len(body) + 12))
	c.b = append(c.b, body...)
	c.u32(uint32(len(body) + 12))
}

func pcapngFile(order byteOrder, ifaces []ngIface, pkts []ngPacket) []byte {
	c := &capFile{order: order}
	shb := &capFile{order: order}
	shb.u32(ngByteOrder)
	shb.u16(1)
	shb.u16(0)
	shb.b = append(shb.b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	c.block(blockSHB, shb.b)
	for _, ifc := range ifaces {
		idb := &capFile{order: order}
		idb.u16(uint16(ifc.link))
		idb.u16(0)
		idb.u32(0)
		if ifc.tsres != 0 {
			idb.u16(optTSResol)
			idb.u16(1)
			idb.b = append(idb.b, ifc.tsres, 0, 0, 0)
		}
		if ifc.offset != 0 {
			idb.u16(14)
			idb.u16(8)
			idb.b = order.AppendUint64(idb.b, uint64(ifc.offset))
		}
		idb.u16(0)
		idb.u16(0)
		c.block(blockIDB, idb.b)
	}
	for _, p := range pkts {
		ifc := ifaces[p.iface]
		ns := p.ts.UnixNano() - ifc.offset*int64(time.Second)
		var units uint64
		switch {
		case ifc.tsres == 0:
			units = uint64(ns / 1000)
		case ifc.tsres&0x80 != 0:
			e := ifc.tsres & 0x7f
			units = uint64(ns/1e9)<<e | uint64(ns%1e9)<<e/1e9
		default:
			units = uint64(ns) / pow10[9-ifc.tsres]
		}
		epb := &capFile{order: order}
		epb.u32(uint32(p.iface))
		epb.u32(uint32(units >> 32))
		epb.u32(uint32(units))
		epb.u32(uint32(len(p.data)))
		epb.u32(uint32(len(p.data)))
		epb.b = append(epb.b, p.data...)
		c.block(blockEPB, epb.b)
	}
	return c.b
}

// ipPacket is the IP packet inside an Ethernet test frame.
func ipPacket(frame []byte) []byte { return frame[14:] }

// nullHeader is the 4-byte BSD loopback header for family in order.
func nullHeader(order byteOrder, family uint32) []byte { return order.AppendUint32(nil, family) }

// sll2Header is a Linux cooked v2 header for an IP packet of EtherType et.
func sll2Header(et layers.EthernetType) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, uint16(et))
	binary.BigEndian.PutUint32(h[4:], 1) // interface index
	binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
	h[10] = 4                            // outgoing
	h[11] = 6
	return h
}

type readPacket struct {
	data   []byte
	ts     time.Time
	length int
	link   layers.LinkType
}

func readAll(t *testing.T, file []byte) ([]readPacket, error) {
	t.Helper()
	cr, err := newCaptureReader(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	var out []readPacket
	for {
		data, ts, n, link, err := cr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, readPacket{slices.Clone(data), time.Unix(0, ts).UTC(), n, link})
	}
}

// TestCaptureReaderFormats: pcap in both byte orders and resolutions, and
// pcapng in both byte orders with decimal and binary timestamp resolutions,
// an offset and two interfaces of different link types, read back exactly.
func TestCaptureReaderFormats(t *testing.T) {
	a := udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "a.example.test", layers.DNSTypeA, false, 0))
	b := tcpFrame(t, pc6, 51000, srv6, 443, 1, clientHello(t, "b.example.test"))
	ts1 := t0.Add(time.Millisecond)
	ts1us := ts1.Truncate(time.Microsecond)
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nano := range []bool{false, true} {
			got, err := readAll(t, pcapFile(order, nano, layers.LinkTypeEthernet, a, b))
			want0, want1 := t0.Truncate(time.Microsecond), ts1us
			if nano {
				want0, want1 = t0, ts1
			}
			if err != nil || len(got) != 2 || !bytes.Equal(got[0].data, a) || !bytes.Equal(got[1].data, b) ||
				!got[0].ts.Equal(want0) || !got[1].ts.Equal(want1) || got[1].length != len(b) || got[0].link != layers.LinkTypeEthernet {
				t.Errorf("pcap %v nano=%v: read %+v, %v; want the two frames at %v and %v", order, nano, got, err, want0, want1)
			}
		}
		ifaces := []ngIface{{link: layers.LinkTypeEthernet}, {link: layers.LinkTypeRaw, tsres: 9}, {link: layers.LinkTypeLinuxSLL2, tsres: 0x80 | 30, offset: 3600}}
		sll2 := append(sll2Header(layers.EthernetTypeIPv6), ipPacket(b)...)
		pkts := []ngPacket{{0, t0, a}, {1, ts1, ipPacket(a)}, {2, ts1.Add(time.Second), sll2}}
		got, err := readAll(t, pcapngFile(order, ifaces, pkts))
		if err != nil || len(got) != 3 {
			t.Fatalf("pcapng %v: read %d packets, %v; want 3", order, len(got), err)
		}
		for i, p := range pkts {
			want := p.ts
			if i == 0 {
				want = want.Truncate(time.Microsecond)
			}
			if d := got[i].ts.Sub(want); !bytes.Equal(got[i].data, p.data) || got[i].link != ifaces[p.iface].link || d < -time.Nanosecond || d > time.Nanosecond {
				t.Errorf("pcapng %v packet %d: %d bytes of link %v at %v; want %d bytes of %v at %v", order, i, len(got[i].data), got[i].link, got[i].ts, len(p.data), ifaces[p.iface].link, want)
			}
		}
	}
}

// TestCaptureReaderGzip: gzip-compressed pcap and pcapng read as the plain
// files do.
func TestCaptureReaderGzip(t *testing.T) {
	a := udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "gz.example.test", layers.DNSTypeA, false, 0))
	for _, file := range [][]byte{
		pcapFile(binary.LittleEndian, false, layers.LinkTypeEthernet, a),
		pcapngFile(binary.BigEndian, []ngIface{{link: layers.LinkTypeEthernet}}, []ngPacket{{0, t0, a}}),
	} {
		got, err := readAll(t, gzipped(t, file))
		if err != nil || len(got) != 1 || !bytes.Equal(got[0].data, a) {
			t.Errorf("gzipped capture: %d packets, %v; want the one frame", len(got), err)
		}
	}
}

// TestCaptureReaderTruncated cuts pcap and pcapng files at every byte:
// a cut between records reads as a shorter file; a cut inside one gives
// ErrTruncated naming that record, after the records before it.
func TestCaptureReaderTruncated(t *testing.T) {
	a := udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "a.example.test", layers.DNSTypeA, false, 0))
	b := tcpFrame(t, pc4, 51000, srv4, 443, 1, clientHello(t, "b.example.test"))
	files := map[string][]byte{
		"pcap":   pcapFile(binary.LittleEndian, false, layers.LinkTypeEthernet, a, b, a),
		"pcapng": pcapngFile(binary.LittleEndian, []ngIface{{link: layers.LinkTypeEthernet}}, []ngPacket{{0, t0, a}, {0, t0, b}, {0, t0, a}}),
	}
	for name, whole := range files {
		// Offsets where a record ends: read the whole file once.
		var ends []int
		cr, err := newCaptureReader(bytes.NewReader(whole))
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, _, _, err := cr.next(); err != nil {
				break
			}
			ends = append(ends, len(whole)-cr.br.Buffered())
		}
		hdr := map[string]int{"pcap": 24, "pcapng": 28 + 24}[name] // file header; SHB and IDB
		for cut := hdr + 1; cut < len(whole); cut++ {
			got, err := readAll(t, whole[:cut])
			if i := slices.Index(ends, cut); i >= 0 {
				if err != nil || len(got) != i+1 {
					t.Errorf("%s cut at record end %d: %d packets, %v; want %d and no error", name, cut, len(got), err, i+1)
				}
				continue
			}
			rec := len(got) + 1
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), fmt.Sprintf("in record %d:", rec)) {
				t.Errorf("%s cut at byte %d: %d packets, error %v; want ErrTruncated in record %d", name, cut, len(got), err, rec)
			}
		}
	}
}

// TestCaptureReaderRefuses: damaged or hostile headers get a specific
// error, never a huge allocation or a panic.
func TestCaptureReaderRefuses(t *testing.T) {
	a := udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "a.example.test", layers.DNSTypeA, false, 0))
	le := binary.LittleEndian
	huge := pcapFile(le, false, layers.LinkTypeEthernet, a)
	le.PutUint32(huge[16:], 0xFFFFFFFF)   // snap length
	le.PutUint32(huge[24+8:], 0xFFFFFFF0) // record length
	ng := pcapngFile(le, []ngIface{{link: layers.LinkTypeEthernet}}, []ngPacket{{0, t0, a}})
	badLen := slices.Clone(ng)
	le.PutUint32(badLen[len(badLen)-4:], 12345) // trailing length
	otherIf := pcapngFile(le, []ngIface{{link: layers.LinkTypeEthernet}}, []ngPacket{{0, t0, a}})
	le.PutUint32(otherIf[len(otherIf)-len(a)-pad4(len(a))-24:], 7) // the EPB's interface id
	bigEPB := slices.Clone(ng)
	le.PutUint32(bigEPB[len(ng)-len(a)-pad4(len(a))-32+4:], 0x7FFFFFF0)
	manyIfaces := make([]ngIface, maxInterfaces+1)
	for i := range manyIfaces {
		manyIfaces[i].link = layers.LinkTypeEthernet
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"giant record", huge, "record 1 claims 4294967280 bytes"},
		{"trailing length", badLen, "trailing length 12345"},
		{"undescribed interface", otherIf, "names interface 7, but the section describes 1"},
		{"giant block", bigEPB, "claims 2147483632 bytes"},
		{"too many interfaces", pcapngFile(le, manyIfaces, nil), "more than 4096 interfaces"},
		{"802.11", pcapFile(le, false, layers.LinkTypeIEEE802_11, a), "link type"},
		{"802.11 interface", pcapngFile(le, []ngIface{{link: layers.LinkTypeEthernet}, {link: layers.LinkTypeIEEE802_11}}, nil), "interface 1: link type"},
		{"pcapng without section header", ng[28:], "not a pcap or pcapng"},
		{"pcap 2.2", func() []byte { f := slices.Clone(huge); le.PutUint16(f[6:], 2); le.PutUint16(f[4:], 3); return f }(), "pcap version 3.2"},
	}
	for _, tt := range tests {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		_, err := readAll(t, tt.file)
		runtime.ReadMemStats(&ms1)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want one containing %q", tt.name, err, tt.want)
		}
		if n := ms1.TotalAlloc - ms0.TotalAlloc; n > 4<<20 {
			t.Errorf("%s: reading allocated %d bytes; want < 4 MiB", tt.name, n)
		}
	}
}

// TestCaptureReaderSkipsUnknownBlocks: a pcapng block of a type carrel does
// not read, larger than any buffer it holds, is skipped, and the packet
// after it read, without allocating its size.
func TestCaptureReaderSkipsUnknownBlocks(t *testing.T) {
	a := udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "after.example.test", layers.DNSTypeA, false, 0))
	le := binary.LittleEndian
	head := pcapngFile(le, []ngIface{{link: layers.LinkTypeEthernet}}, nil)
	tail := pcapngFile(le, []ngIface{{link: layers.LinkTypeEthernet}}, []ngPacket{{0, t0, a}})[len(head):]
	c := &capFile{order: le, b: head}
	c.block(0x40000BAD, make([]byte, 16<<20))
	file := append(c.b, tail...)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	got, err := readAll(t, file)
	runtime.ReadMemStats(&ms1)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].data, a) {
		t.Errorf("read %d packets, %v; want the packet after the skipped block", len(got), err)
	}
	if n := ms1.TotalAlloc - ms0.TotalAlloc; n > 4<<20 {
		t.Errorf("skipping a 16 MiB block allocated %d bytes; want < 4 MiB", n)
	}
}

// linkFiles are captures of one DNS query and one TLS ClientHello over
// IPv4 and IPv6 in every link type the reader takes, framed as the tools
// of each system write them.
func linkFiles(t *testing.T) map[string][]byte {
	t.Helper()
	d4 := ipPacket(udpFrame(t, pc4, 40000, srv4, 53, dnsQuery(t, "v4.example.test", layers.DNSTypeA, false, 0)))
	h6 := ipPacket(tcpFrame(t, pc6, 51000, srv6, 443, 1, clientHello(t, "v6.example.test")))
	le, be := binary.LittleEndian, binary.BigEndian
	nullFile := func(order byteOrder, link layers.LinkType, inet6 uint32) []byte {
		return pcapFile(order, false, link, append(nullHeader(order, afInet), d4...), append(nullHeader(order, inet6), h6...))
	}
	return map[string][]byte{
		// tcpdump -i lo0 on little-endian FreeBSD and on big-endian
		// hardware; macOS's AF_INET6 is 30.
		"null-le":   nullFile(le, layers.LinkTypeNull, afInet6Free),
		"null-be":   nullFile(be, layers.LinkTypeNull, afInet6Apple),
		"null-swap": pcapFile(le, false, layers.LinkTypeNull, append(nullHeader(be, afInet), d4...), append(nullHeader(be, afInet6BSD), h6...)),
		// OpenBSD's DLT_LOOP: the family in network order, always.
		"loop": pcapFile(le, false, layers.LinkTypeLoop, append(nullHeader(be, afInet), d4...), append(nullHeader(be, afInet6BSD), h6...)),
		// tcpdump -i any with libpcap ≥ 1.10.
		"sll2": pcapFile(le, false, layers.LinkTypeLinuxSLL2, append(sll2Header(layers.EthernetTypeIPv4), d4...), append(sll2Header(layers.EthernetTypeIPv6), h6...)),
	}
}

// TestLinkTypes: BSD loopback (Null in either byte order, Loop) and Linux
// cooked v2 captures give the same records as Ethernet.
func TestLinkTypes(t *testing.T) {
	for name, file := range linkFiles(t) {
		got := decodeNames(t, file)
		want := []string{"dns v4.example.test", "tls v6.example.test"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: records %q; want %q", name, got, want)
		}
	}
}

// decodeNames runs DecodeCapture over file and lists its DNS, TLS and HTTP
// records as "kind name".
func decodeNames(t *testing.T, file []byte) []string {
	t.Helper()
	sink := &memSink{}
	if _, err := DecodeCapture(bytes.NewReader(file), sink); err != nil {
		t.Fatalf("DecodeCapture: %v", err)
	}
	var out []string
	for _, line := range sink.lines {
		r, err := DecodeJSON(line)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Kind {
		case KindDNS:
			out = append(out, "dns "+r.Name)
		case KindTLS:
			out = append(out, "tls "+r.SNI)
		case KindHTTP:
			out = append(out, "http "+r.Host)
		}
	}
	return out
}

// TestDecodeCaptureMatchesPcapgo: on a file pcapgo writes, DecodeCapture
// sees every packet with the time and length pcapgo wrote.
func TestDecodeCaptureMatchesPcapgo(t *testing.T) {
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	var want []gopacket.CaptureInfo
	for i := range 50 {
		f := udpFrame(t, pc4, uint16(1000+i), srv4, 9, make([]byte, i*7))
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 1234567), CaptureLength: len(f) - i%3, Length: len(f)}
		if err := w.WritePacket(ci, f[:ci.CaptureLength]); err != nil {
			t.Fatal(err)
		}
		want = append(want, ci)
	}
	w.Flush()
	got, err := readAll(t, b.Bytes())
	if err != nil || len(got) != len(want) {
		t.Fatalf("read %d packets, %v; want %d", len(got), err, len(want))
	}
	for i := range want {
		if !got[i].ts.Equal(want[i].Timestamp.Truncate(time.Microsecond)) && !got[i].ts.Equal(want[i].Timestamp) ||
			got[i].length != want[i].Length || len(got[i].data) != want[i].CaptureLength {
			t.Errorf("packet %d: %v %d/%d; want %v %d/%d", i, got[i].ts, len(got[i].data), got[i].length, want[i].Timestamp, want[i].CaptureLength, want[i].Length)
		}
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
