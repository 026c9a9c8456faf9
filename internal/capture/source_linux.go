package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// afSource reads an AF_PACKET TPACKET_V3 ring.
type afSource struct {
	*afpacket.TPacket
	link    layers.LinkType
	dropped uint64
}

// ARPHRD values from /sys/class/net/*/type that we can read.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdNone     = 65534 // tun devices: bare IP packets
)

// interfaceLinkType reads the link type of iface from sysfs, opening no
// socket.
func interfaceLinkType(iface string) (layers.LinkType, error) {
	if iface == "" || iface == "." || iface == ".." || strings.ContainsRune(iface, '/') {
		return 0, fmt.Errorf("invalid interface name %q", iface)
	}
	b, err := os.ReadFile("/sys/class/net/" + iface + "/type")
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no network interface %q", iface)
	}
	if err != nil {
		return 0, fmt.Errorf("reading the link type of %q: %w", iface, err)
	}
	t, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("reading the link type of %q: %w", iface, err)
	}
	switch t {
	case arphrdEther, arphrdLoopback:
		return layers.LinkTypeEthernet, nil
	case arphrdNone:
		return layers.LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("interface %q has link type %d, which carrel cannot capture (it reads Ethernet and bare IP)", iface, t)
}

// ringGeometry splits the ring into blocks. More, smaller blocks let the
// kernel keep filling while we read one; a block must still hold the
// largest (GSO/GRO) packet a veth or NIC can hand up, 64 KiB.
func ringGeometry(ringSize int) (blockSize, numBlocks int) {
	blockSize = 256 << 10
	for blockSize > 128<<10 && ringSize/blockSize < 8 {
		blockSize /= 2
	}
	return blockSize, ringSize / blockSize
}

func openSource(s Settings) (source, error) {
	link, err := interfaceLinkType(s.Interface)
	if err != nil {
		return nil, err
	}
	blockSize, numBlocks := ringGeometry(s.RingSize)
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(s.Interface),
		afpacket.TPacketVersion3,
		afpacket.SocketRaw,
		afpacket.OptFrameSize(4096),
		afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks),
		// A block is handed to us when full or after this long, so
		// quiet traffic still arrives promptly.
		afpacket.OptBlockTimeout(50*time.Millisecond),
		afpacket.OptPollTimeout(time.Duration(pollTimeout)),
	)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("opening AF_PACKET socket on %s: %w (capture needs root or CAP_NET_RAW)", s.Interface, err)
		}
		return nil, fmt.Errorf("opening AF_PACKET ring on %s: %w", s.Interface, err)
	}
	return &afSource{TPacket: tp, link: link}, nil
}

func (a *afSource) timeout(err error) bool { return errors.Is(err, afpacket.ErrTimeout) }

func (a *afSource) linkType() layers.LinkType { return a.link }

// drops reads the kernel's tp_drops. The kernel resets its counters on
// every read; afpacket adds them up for us.
func (a *afSource) drops() uint64 {
	if _, v3, err := a.SocketStats(); err == nil {
		a.dropped = uint64(v3.Drops())
	}
	return a.dropped
}

func (a *afSource) close() { a.TPacket.Close() }
