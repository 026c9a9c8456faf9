package capture

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// afSource reads an AF_PACKET TPACKET_V3 ring.
type afSource struct {
	*afpacket.TPacket
	link    layers.LinkType
	dropped uint64
}

// interfaceLinkType asks the kernel (netlink RTM_GETLINK, as
// net.InterfaceByName does) for the hardware type of iface. It opens no
// capture socket, and it answers for the network namespace of the calling
// thread, which is where openSource will bind.
func interfaceLinkType(iface string) (layers.LinkType, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return 0, fmt.Errorf("listing network interfaces: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return 0, fmt.Errorf("listing network interfaces: %w", err)
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		info := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFLA_IFNAME && string(bytes.TrimRight(a.Value, "\x00")) == iface {
				return linkTypeOf(iface, int(info.Type))
			}
		}
	}
	return 0, fmt.Errorf("no network interface %q", iface)
}

func linkTypeOf(iface string, arphrd int) (layers.LinkType, error) {
	switch arphrd {
	case syscall.ARPHRD_ETHER, syscall.ARPHRD_LOOPBACK:
		return layers.LinkTypeEthernet, nil
	case syscall.ARPHRD_NONE: // tun devices: bare IP packets
		return layers.LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("interface %q has hardware type %d, which carrel cannot capture (it reads Ethernet and bare IP)", iface, arphrd)
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
