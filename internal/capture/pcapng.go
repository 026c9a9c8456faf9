package capture

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// pcapng block types and option codes used here (pcapng draft, section 4).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	optEnd      = 0
	optComment  = 1
	optUserAppl = 4 // shb_userappl
	optTSResol  = 9 // if_tsresol

	// epbOverhead is an EPB's size without its packet data and padding.
	epbOverhead = 32
)

// PcapngHeader returns the bytes that begin every packets-mode segment: a
// Section Header Block naming carrel (and the case, when caseID is set)
// and one Interface Description Block for link with the given snap length
// and nanosecond timestamps. Each segment is thereby a standalone pcapng
// file that tshark, capinfos and Wireshark open.
func PcapngHeader(link layers.LinkType, snaplen int, caseID string) []byte {
	var opts []byte
	opts = appendOption(opts, optUserAppl, []byte("carrel"))
	if caseID != "" {
		opts = appendOption(opts, optComment, []byte("carrel case "+caseID))
	}
	opts = appendOption(opts, optEnd, nil)

	b := make([]byte, 0, 64+len(opts))
	shbLen := 28 + len(opts)
	b = le32(b, blockSHB)
	b = le32(b, uint32(shbLen))
	b = le32(b, 0x1A2B3C4D)                             // byte-order magic
	b = le16(b, 1)                                      // major
	b = le16(b, 0)                                      // minor
	b = binary.LittleEndian.AppendUint64(b, ^uint64(0)) // section length unknown
	b = append(b, opts...)
	b = le32(b, uint32(shbLen))

	idbOpts := appendOption(nil, optTSResol, []byte{9})
	idbOpts = appendOption(idbOpts, optEnd, nil)
	idbLen := 20 + len(idbOpts)
	b = le32(b, blockIDB)
	b = le32(b, uint32(idbLen))
	b = le16(b, uint16(link))
	b = le16(b, 0)
	b = le32(b, uint32(snaplen))
	b = append(b, idbOpts...)
	b = le32(b, uint32(idbLen))
	return b
}

func appendOption(b []byte, code uint16, v []byte) []byte {
	b = le16(b, code)
	b = le16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, pad4(len(v)))...)
}

// appendEPB appends an Enhanced Packet Block for interface 0 holding data
// (already cut to the snap length) of a packet origLen bytes long, with
// the timestamp ts in Unix nanoseconds.
func appendEPB(b, data []byte, ts int64, origLen int) []byte {
	n := epbOverhead + len(data) + pad4(len(data))
	b = le32(b, blockEPB)
	b = le32(b, uint32(n))
	b = le32(b, 0)
	b = le32(b, uint32(uint64(ts)>>32))
	b = le32(b, uint32(ts))
	b = le32(b, uint32(len(data)))
	b = le32(b, uint32(origLen))
	b = append(b, data...)
	for range pad4(len(data)) {
		b = append(b, 0)
	}
	return le32(b, uint32(n))
}

func pad4(n int) int { return (4 - n&3) & 3 }

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
