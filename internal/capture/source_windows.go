//go:build windows

package capture

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// pcapSource reads through Npcap's wpcap.dll, which carrel loads itself
// when capture starts (npcap.go says why not through gopacket/pcap).
type pcapSource struct {
	h *npcapHandle
}

// interfaceLinkType: Npcap presents Ethernet and Wi-Fi adapters as
// Ethernet; openSource checks the real link type once the handle is open.
func interfaceLinkType(string) (layers.LinkType, error) { return layers.LinkTypeEthernet, nil }

func openSource(s Settings) (source, error) {
	lib, err := loadNpcap()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.Interface, err)
	}
	dev, err := npcapDevice(lib, s.Interface)
	if err != nil {
		return nil, err
	}
	snap := DefaultSnaplen
	if s.Mode == ModePackets {
		snap = s.Snaplen
	}
	// A positive timeout makes reads return regularly, so Stop is prompt.
	h, err := lib.open(dev, snap, s.RingSize, int(time.Duration(pollTimeout)/time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("starting Npcap on %s: %w", s.Interface, err)
	}
	if lt := layers.LinkType(h.linkType()); lt != layers.LinkTypeEthernet {
		h.close()
		return nil, fmt.Errorf("interface %s has link type %v; carrel captures Ethernet and Wi-Fi adapters", s.Interface, lt)
	}
	return &pcapSource{h: h}, nil
}

// npcapDevice finds the \Device\NPF_{…} name for name, which may be that
// name itself, the adapter's description, or its Windows name (as in
// `netsh interface show interface`), matched by address.
func npcapDevice(lib *npcapLib, name string) (string, error) {
	if strings.HasPrefix(name, `\Device\`) {
		return name, nil
	}
	devs, err := lib.findAllDevs()
	if err != nil {
		return "", fmt.Errorf("listing Npcap adapters: %w", err)
	}
	for _, d := range devs {
		if strings.EqualFold(d.Description, name) {
			return d.Name, nil
		}
	}
	if ifc, err := net.InterfaceByName(name); err == nil {
		addrs, _ := ifc.Addrs()
		for _, d := range devs {
			for _, da := range d.Addrs {
				for _, a := range addrs {
					if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(net.IP(da)) {
						return d.Name, nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("no Npcap adapter matches %q (give its name, description or \\Device\\NPF_{…} name)", name)
}

func (p *pcapSource) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, hdr, err := p.h.read()
	if err != nil {
		return nil, gopacket.CaptureInfo{}, err
	}
	return data, pcapCaptureInfo(hdr.Sec, hdr.Usec, hdr.Caplen, hdr.Len), nil
}

func (p *pcapSource) timeout(err error) bool { return errors.Is(err, errNpcapTimeout) }

func (p *pcapSource) drops() uint64 { return p.h.drops() }

func (p *pcapSource) linkType() layers.LinkType { return layers.LinkType(p.h.linkType()) }

func (p *pcapSource) close() { p.h.close() }
