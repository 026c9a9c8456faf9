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
	"github.com/gopacket/gopacket/pcap"
)

// ErrNpcapMissing means wpcap.dll could not be loaded: Npcap is not
// installed. gopacket loads the DLL at run time (LoadLibraryEx), so carrel
// itself starts fine without it; only capture needs it.
var ErrNpcapMissing = errors.New("wpcap.dll not found: Npcap is not installed; install it from https://npcap.com with \"WinPcap API-compatible mode\" ticked, then restart the carrel service")

// pcapSource reads through Npcap.
type pcapSource struct {
	h *pcap.Handle
}

// interfaceLinkType: Npcap presents Ethernet and Wi-Fi adapters as
// Ethernet; openSource checks the real link type once the handle is open.
func interfaceLinkType(string) (layers.LinkType, error) { return layers.LinkTypeEthernet, nil }

func openSource(s Settings) (source, error) {
	if err := pcap.LoadWinPCAP(); err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.Interface, ErrNpcapMissing)
	}
	dev, err := npcapDevice(s.Interface)
	if err != nil {
		return nil, err
	}
	in, err := pcap.NewInactiveHandle(dev)
	if err != nil {
		return nil, fmt.Errorf("opening %s with Npcap: %w", s.Interface, err)
	}
	defer in.CleanUp()
	snap := DefaultSnaplen
	if s.Mode == ModePackets {
		snap = s.Snaplen
	}
	for _, set := range []func() error{
		func() error { return in.SetSnapLen(snap) },
		func() error { return in.SetBufferSize(s.RingSize) },
		// A positive timeout makes reads return regularly, so Stop is prompt.
		func() error { return in.SetTimeout(time.Duration(pollTimeout)) },
		func() error { return in.SetPromisc(false) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("setting up Npcap on %s: %w", s.Interface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, fmt.Errorf("starting Npcap on %s: %w", s.Interface, err)
	}
	if h.LinkType() != layers.LinkTypeEthernet {
		h.Close()
		return nil, fmt.Errorf("interface %s has link type %v; carrel captures Ethernet and Wi-Fi adapters", s.Interface, h.LinkType())
	}
	return &pcapSource{h: h}, nil
}

// npcapDevice finds the \Device\NPF_{…} name for name, which may be that
// name itself, the adapter's description, or its Windows name (as in
// `netsh interface show interface`), matched by address.
func npcapDevice(name string) (string, error) {
	if strings.HasPrefix(name, `\Device\`) {
		return name, nil
	}
	devs, err := pcap.FindAllDevs()
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
			for _, da := range d.Addresses {
				for _, a := range addrs {
					if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(da.IP) {
						return d.Name, nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("no Npcap adapter matches %q (give its name, description or \\Device\\NPF_{…} name)", name)
}

func (p *pcapSource) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return p.h.ZeroCopyReadPacketData()
}

func (p *pcapSource) timeout(err error) bool {
	return errors.Is(err, pcap.NextErrorTimeoutExpired)
}

func (p *pcapSource) drops() uint64 {
	st, err := p.h.Stats()
	if err != nil {
		return 0
	}
	return uint64(st.PacketsDropped) + uint64(st.PacketsIfDropped)
}

func (p *pcapSource) linkType() layers.LinkType { return p.h.LinkType() }

func (p *pcapSource) close() { p.h.Close() }
