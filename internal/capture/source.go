package capture

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// source is an open live capture handle: AF_PACKET on Linux, Npcap on
// Windows. Only the capture goroutine calls it.
type source interface {
	// ZeroCopyReadPacketData returns the next packet, valid until the
	// next call, or an error for which timeout reports true when no
	// packet came within the poll timeout.
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	timeout(err error) bool
	// drops is the number of packets the kernel or driver dropped since
	// the source was opened.
	drops() uint64
	linkType() layers.LinkType
	close()
}

// pollTimeout bounds how long a read waits for a packet, and with it how
// long Stop waits for the capture goroutine to notice. Ten wake-ups a
// second cost nothing measurable when idle (see BENCHMARKS.md).
const pollTimeout = 100_000_000 // ns (100 ms)
