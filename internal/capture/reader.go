package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// ErrTruncated means a capture file ends inside a record: the file was cut
// (a copy interrupted, a disk full). The records before the cut are good.
var ErrTruncated = errors.New("capture truncated")

// Limits of the file reader. They bound its memory whatever a file says
// (a snap length of 4 GiB in the header, a block claiming 2 GiB, a gzip
// bomb): the reader holds one buffer of maxBlock bytes, a bufio buffer, the
// gzip window, and at most maxInterfaces interface descriptions.
const (
	// maxRecord is the largest packet a record may hold: libpcap's
	// MAXIMUM_SNAPLEN, beyond which tcpdump refuses a record too.
	maxRecord = 262144
	// maxBlock bounds a pcapng block that is read into memory (a packet
	// block with its options, a section or interface header). Bigger
	// blocks of types carrel does not read are skipped unread.
	maxBlock = maxRecord + 64<<10
	// maxInterfaces bounds the interface descriptions of one pcapng
	// section (libpcap and Wireshark read files with a handful).
	maxInterfaces = 1 << 12
	// readBuffer holds any block the reader reads, so records are
	// returned from it without a copy (see take).
	readBuffer = 512 << 10
)

// pcap and pcapng magic numbers, as read little-endian from the first four
// bytes.
const (
	magicMicro     = 0xA1B2C3D4
	magicNano      = 0xA1B23C4D
	magicMicroSwap = 0xD4C3B2A1
	magicNanoSwap  = 0x4D3CB2A1
	ngByteOrder    = 0x1A2B3C4D
	blockSPB       = 0x00000003
	blockPB        = 0x00000002 // obsolete Packet Block
)

// ngInterface is what a pcapng Interface Description Block says that the
// reader needs.
type ngInterface struct {
	link     layers.LinkType
	tsPow2   bool   // resolution is 2^-tsExp seconds (else 10^-tsExp)
	tsExp    uint8  // if_tsresol's exponent
	tsOffset int64  // if_tsoffset, seconds
	snaplen  uint32 // for Simple Packet Blocks
}

// captureReader reads the packet records of a pcap or pcapng file, plain
// or gzip-compressed, in bounded memory (see the limits above). It never
// allocates per record.
type captureReader struct {
	br    *bufio.Reader
	ng    bool
	order binary.ByteOrder
	// pcap
	link      layers.LinkType
	nanoScale int64 // 1 for nanosecond files, 1000 for microsecond ones
	// pcapng: the current section's interfaces
	ifaces []ngInterface
	buf    []byte  // one record or block, maxBlock bytes
	cur    ngBlock // the pcapng block just read
	// records counts the packet records returned so far; errors name the
	// record after it.
	records uint64
}

// newCaptureReader detects the format by its magic number (through gzip,
// if the file is compressed) and reads the file header.
func newCaptureReader(r io.Reader) (*captureReader, error) {
	br := bufio.NewReaderSize(r, readBuffer)
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w (it looks gzip-compressed, but: %v)", ErrNotCapture, err)
		}
		br = bufio.NewReaderSize(zr, readBuffer)
	}
	cr := &captureReader{br: br, buf: make([]byte, maxBlock)}
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w (it is only %d bytes long)", ErrNotCapture, len(magic))
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case blockSHB:
		cr.ng = true
		if err := cr.readNgBlock(true); err != nil {
			return nil, err
		}
	case magicMicro, magicNano, magicMicroSwap, magicNanoSwap:
		if err := cr.readPcapHeader(m); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w (it starts with % x)", ErrNotCapture, magic)
	}
	return cr, nil
}

func (cr *captureReader) readPcapHeader(magic uint32) error {
	h := cr.buf[:24]
	if _, err := io.ReadFull(cr.br, h); err != nil {
		return fmt.Errorf("%w in its 24-byte pcap file header", ErrTruncated)
	}
	cr.order, cr.nanoScale = binary.LittleEndian, 1000
	if magic == magicMicroSwap || magic == magicNanoSwap {
		cr.order = binary.BigEndian
	}
	if magic == magicNano || magic == magicNanoSwap {
		cr.nanoScale = 1
	}
	if v := cr.order.Uint16(h[4:]); v != 2 {
		return fmt.Errorf("pcap version %d.%d is not supported (want 2.4)", v, cr.order.Uint16(h[6:]))
	}
	// The upper bits of the link type field carry FCS information
	// (LINKTYPE_* in the pcap spec): the link type is the lower 26.
	lt := cr.order.Uint32(h[20:]) & 0x03FFFFFF
	if lt > 0xFFFF {
		return unsupportedLink(layers.LinkType(0), int(lt))
	}
	cr.link = layers.LinkType(lt)
	return checkLink(cr.link)
}

// next returns the next packet (valid until the next call), the link type
// of its interface, and io.EOF after the last record.
func (cr *captureReader) next() ([]byte, int64, int, layers.LinkType, error) {
	if !cr.ng {
		return cr.nextPcap()
	}
	for {
		data, ts, origLen, link, isPacket, err := cr.nextNgBlock()
		if err != nil || isPacket {
			return data, ts, origLen, link, err
		}
	}
}

// take returns the next n bytes of the file (n ≤ readBuffer) without
// copying them: they stay valid until the next read. At the end of the
// file it returns what there is, with io.EOF when that is nothing and
// io.ErrUnexpectedEOF otherwise.
func (cr *captureReader) take(n int) ([]byte, error) {
	b, err := cr.br.Peek(n)
	cr.br.Discard(len(b))
	if err == io.EOF && len(b) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func (cr *captureReader) nextPcap() ([]byte, int64, int, layers.LinkType, error) {
	rec := cr.records + 1
	h, err := cr.take(16)
	if err != nil {
		if err == io.EOF {
			return nil, 0, 0, 0, io.EOF
		}
		return nil, 0, 0, 0, cr.cut(err, rec, fmt.Sprintf("its 16-byte header ends after %d", len(h)))
	}
	capLen, origLen := cr.order.Uint32(h[8:]), cr.order.Uint32(h[12:])
	if capLen > maxRecord {
		return nil, 0, 0, 0, fmt.Errorf("record %d claims %d bytes of packet data; carrel reads at most %d (as tcpdump does): the file is damaged", rec, capLen, maxRecord)
	}
	ts := int64(cr.order.Uint32(h[0:]))*int64(time.Second) + int64(cr.order.Uint32(h[4:]))*cr.nanoScale
	data, err := cr.take(int(capLen))
	if err != nil {
		return nil, 0, 0, 0, cr.cut(err, rec, fmt.Sprintf("it holds %d of its %d bytes", len(data), capLen))
	}
	cr.records++
	return data, ts, int(max(origLen, capLen)), cr.link, nil
}

// cut turns a read error inside record rec into ErrTruncated when the file
// simply ended there.
func (cr *captureReader) cut(err error, rec uint64, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w in record %d: %s", ErrTruncated, rec, what)
	}
	return fmt.Errorf("reading record %d: %w", rec, err)
}

// nextNgBlock reads one pcapng block. For a packet block it returns the
// packet; other blocks it reads for what they describe (section and
// interface headers) or skips.
func (cr *captureReader) nextNgBlock() (data []byte, ts int64, origLen int, link layers.LinkType, isPacket bool, err error) {
	if _, err := cr.br.Peek(1); err == io.EOF {
		return nil, 0, 0, 0, false, io.EOF
	}
	if err := cr.readNgBlock(false); err != nil {
		return nil, 0, 0, 0, false, err
	}
	return cr.packet()
}

// ngBlock is the pcapng block readNgBlock just read (body is nil for a
// block it skipped unread).
type ngBlock struct {
	typ  uint32
	body []byte
}

// readNgBlock reads the next block into cr.buf. A Section Header Block
// sets the byte order and forgets the interfaces; an Interface Description
// Block adds one. first says the block must be a section header.
func (cr *captureReader) readNgBlock(first bool) error {
	rec := cr.records + 1
	h := cr.buf[:8]
	if n, err := io.ReadFull(cr.br, h); err != nil {
		return cr.cut(err, rec, fmt.Sprintf("the block around it ends %d bytes into its header", n))
	}
	typ := binary.LittleEndian.Uint32(h)
	if typ == blockSHB {
		// The byte-order magic follows the length; read it first.
		bom := cr.buf[8:12]
		if n, err := io.ReadFull(cr.br, bom); err != nil {
			return cr.cut(err, rec, fmt.Sprintf("a section header ends %d bytes into its byte-order magic", n))
		}
		switch {
		case binary.LittleEndian.Uint32(bom) == ngByteOrder:
			cr.order = binary.LittleEndian
		case binary.BigEndian.Uint32(bom) == ngByteOrder:
			cr.order = binary.BigEndian
		default:
			return fmt.Errorf("pcapng section header before record %d has no valid byte-order magic (% x)", rec, bom)
		}
		cr.ifaces = cr.ifaces[:0]
	} else if first {
		return fmt.Errorf("%w (a pcapng file must start with a section header)", ErrNotCapture)
	}
	typ = cr.order.Uint32(h)
	total := cr.order.Uint32(h[4:])
	if total < 12 || total%4 != 0 {
		return fmt.Errorf("pcapng block of type %#x before record %d has an invalid length %d: the file is damaged", typ, rec, total)
	}
	bodyLen := int64(total) - 12
	read := 0
	if typ == blockSHB {
		read = 4 // the byte-order magic, already in buf[8:12]
	}
	if bodyLen > maxBlock-16 {
		switch typ {
		case blockEPB, blockSPB, blockPB, blockIDB, blockSHB:
			return fmt.Errorf("pcapng block of type %#x before record %d claims %d bytes; carrel reads blocks of at most %d: the file is damaged", typ, rec, total, maxBlock)
		}
		// A block carrel does not read (name resolution, statistics,
		// custom, …): skip it without holding it.
		rest := bodyLen + 4 - int64(read)
		if n, err := io.CopyN(io.Discard, cr.br, rest); err != nil {
			return cr.cut(err, rec, fmt.Sprintf("a block of %d bytes before it ends after %d", total, n+8+int64(read)))
		}
		cr.cur = ngBlock{typ: typ}
		return nil
	}
	body := cr.buf[8 : 8+bodyLen+4] // the body and the trailing length
	if typ == blockSHB {
		if n, err := io.ReadFull(cr.br, body[read:]); err != nil {
			return cr.cut(err, rec, fmt.Sprintf("the section header before it has %d of its %d bytes", 8+read+n, total))
		}
	} else {
		var err error
		if body, err = cr.take(int(bodyLen) + 4); err != nil {
			return cr.cut(err, rec, fmt.Sprintf("the block holding it has %d of its %d bytes", 8+len(body), total))
		}
	}
	if tail := cr.order.Uint32(body[bodyLen:]); tail != total {
		return fmt.Errorf("pcapng block of type %#x before record %d: its trailing length %d differs from its length %d: the file is damaged", typ, rec, tail, total)
	}
	cr.cur = ngBlock{typ: typ, body: body[:bodyLen]}
	switch typ {
	case blockSHB:
		if len(cr.cur.body) < 12 || cr.order.Uint16(cr.cur.body[4:]) != 1 {
			return fmt.Errorf("pcapng section header before record %d: version not 1.x", rec)
		}
	case blockIDB:
		return cr.addInterface(cr.cur.body, rec)
	}
	return nil
}

func (cr *captureReader) addInterface(b []byte, rec uint64) error {
	if len(b) < 8 {
		return fmt.Errorf("pcapng interface description before record %d is %d bytes long; want at least 8", rec, len(b))
	}
	if len(cr.ifaces) >= maxInterfaces {
		return fmt.Errorf("pcapng section describes more than %d interfaces before record %d", maxInterfaces, rec)
	}
	ifc := ngInterface{link: layers.LinkType(cr.order.Uint16(b)), tsExp: 6, snaplen: cr.order.Uint32(b[4:])}
	if err := checkLink(ifc.link); err != nil {
		return fmt.Errorf("interface %d: %w", len(cr.ifaces), err)
	}
	for opts := b[8:]; len(opts) >= 4; {
		code, n := cr.order.Uint16(opts), int(cr.order.Uint16(opts[2:]))
		opts = opts[4:]
		if code == optEnd || n > len(opts) {
			break
		}
		v := opts[:n]
		switch {
		case code == optTSResol && n == 1:
			ifc.tsPow2, ifc.tsExp = v[0]&0x80 != 0, v[0]&0x7f
		case code == 14 && n == 8: // if_tsoffset
			ifc.tsOffset = int64(cr.order.Uint64(v))
		}
		opts = opts[min(len(opts), n+pad4(n)):]
	}
	cr.ifaces = append(cr.ifaces, ifc)
	return nil
}

// packet returns the packet of the block readNgBlock just read, if it is
// a packet block.
func (cr *captureReader) packet() (data []byte, ts int64, origLen int, link layers.LinkType, isPacket bool, err error) {
	b := cr.cur.body
	rec := cr.records + 1
	var ifID uint32
	var tsRaw uint64
	switch cr.cur.typ {
	case blockEPB, blockPB:
		if len(b) < 20 {
			return nil, 0, 0, 0, false, fmt.Errorf("pcapng packet block of record %d is %d bytes long; want at least 20", rec, len(b))
		}
		if cr.cur.typ == blockEPB {
			ifID = cr.order.Uint32(b)
		} else {
			ifID = uint32(cr.order.Uint16(b))
		}
		tsRaw = uint64(cr.order.Uint32(b[4:]))<<32 | uint64(cr.order.Uint32(b[8:]))
		capLen, orig := cr.order.Uint32(b[12:]), cr.order.Uint32(b[16:])
		if uint64(capLen) > uint64(len(b)-20) {
			return nil, 0, 0, 0, false, fmt.Errorf("pcapng packet block of record %d claims %d bytes in a block of %d: the file is damaged", rec, capLen, len(b)+12)
		}
		data, origLen = b[20:20+capLen], int(max(orig, capLen))
	case blockSPB:
		if len(b) < 4 {
			return nil, 0, 0, 0, false, fmt.Errorf("pcapng simple packet block of record %d is %d bytes long", rec, len(b))
		}
		orig := cr.order.Uint32(b)
		capLen := min(uint64(orig), uint64(len(b)-4))
		if len(cr.ifaces) > 0 && cr.ifaces[0].snaplen > 0 {
			capLen = min(capLen, uint64(cr.ifaces[0].snaplen))
		}
		data, origLen = b[4:4+capLen], int(max(uint64(orig), capLen))
	default:
		return nil, 0, 0, 0, false, nil
	}
	if int(ifID) >= len(cr.ifaces) {
		return nil, 0, 0, 0, false, fmt.Errorf("pcapng record %d names interface %d, but the section describes %d", rec, ifID, len(cr.ifaces))
	}
	if len(data) > maxRecord {
		return nil, 0, 0, 0, false, fmt.Errorf("record %d holds %d bytes of packet data; carrel reads at most %d (as tcpdump does): the file is damaged", rec, len(data), maxRecord)
	}
	ifc := &cr.ifaces[ifID]
	cr.records++
	if cr.cur.typ != blockSPB {
		ts = ifc.nanos(tsRaw)
	}
	return data, ts, origLen, ifc.link, true, nil
}

// nanos converts a timestamp in the interface's units to Unix nanoseconds.
func (ifc *ngInterface) nanos(t uint64) int64 {
	var ns uint64
	switch {
	case ifc.tsPow2:
		// t / 2^e seconds: whole seconds, then the fraction in ns.
		e := uint(min(ifc.tsExp, 63))
		secs, frac := t>>e, t&(1<<e-1)
		ns = secs * 1e9
		if e > 0 {
			hi, lo := bits.Mul64(frac, 1e9)
			ns += hi<<(64-e) | lo>>e
		}
	case ifc.tsExp <= 9:
		ns = t * pow10[9-ifc.tsExp]
	case ifc.tsExp <= 19:
		ns = t / pow10[ifc.tsExp-9]
	}
	return int64(ns) + ifc.tsOffset*int64(time.Second)
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// checkLink refuses captures of link types the processor cannot decode,
// naming what it can.
func checkLink(lt layers.LinkType) error {
	if _, ok := linkOf(lt); !ok {
		return unsupportedLink(lt, int(lt))
	}
	return nil
}

func unsupportedLink(lt layers.LinkType, n int) error {
	return fmt.Errorf("link type %v (%d) is not supported; carrel reads Ethernet, Linux cooked (v1 and v2), BSD loopback (Null and Loop) and raw IP captures", lt, n)
}

// firstLink is the link type the processor starts with: the pcap file's,
// or the first pcapng interface's (Ethernet before any is described; the
// reader refuses packets of undescribed interfaces).
func (cr *captureReader) firstLink() layers.LinkType {
	if !cr.ng {
		return cr.link
	}
	if len(cr.ifaces) > 0 {
		return cr.ifaces[0].link
	}
	return layers.LinkTypeEthernet
}
