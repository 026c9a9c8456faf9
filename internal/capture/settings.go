package capture

import (
	"errors"
	"fmt"
	"time"
)

// Mode says what the engine keeps of the traffic.
type Mode uint8

const (
	// ModeMetadata (the default) keeps flows, DNS questions, TLS SNI and
	// HTTP Host, as JSON Lines records. No other payload byte leaves the
	// extractor.
	ModeMetadata Mode = iota
	// ModePackets keeps the packets themselves, cut to Settings.Snaplen,
	// as pcapng blocks.
	ModePackets
)

func (m Mode) String() string {
	if m == ModePackets {
		return "packets"
	}
	return "metadata"
}

// ParseMode reads a mode as written in the config.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "metadata":
		return ModeMetadata, nil
	case "packets":
		return ModePackets, nil
	}
	return 0, fmt.Errorf("unknown capture mode %q (want metadata or packets)", s)
}

// Defaults and bounds of Settings.
const (
	DefaultRingSize = 8 << 20
	DefaultSnaplen  = 262144
	DefaultFlowIdle = 60 * time.Second
	DefaultMaxFlows = 65536

	minRingSize = 1 << 20
	maxRingSize = 1 << 30
	minSnaplen  = 64
)

// Settings say what to capture and where the records go.
type Settings struct {
	Interface string // network interface name (Windows: name, description or \Device\NPF_{…})
	Mode      Mode
	// Snaplen is how many bytes of each packet packets mode keeps
	// (64…262144; 0 means DefaultSnaplen). Metadata mode ignores it.
	Snaplen int
	// RingSize is the kernel ring (Linux) or Npcap buffer (Windows) in
	// bytes; 0 means DefaultRingSize. It is what absorbs bursts while the
	// capture goroutine is busy: too small and the kernel drops.
	RingSize int
	// FlowIdle ends a flow record after this long without packets; 0
	// means DefaultFlowIdle.
	FlowIdle time.Duration
	// MaxFlows bounds the flow table; 0 means DefaultMaxFlows.
	MaxFlows int
	// CaseID names the misuse case in packets-mode segment headers.
	CaseID string
	// Sink receives every record; the engine closes it when capture ends.
	Sink Sink
}

// withDefaults fills zero fields and checks the rest.
func (s Settings) withDefaults() (Settings, error) {
	if s.RingSize == 0 {
		s.RingSize = DefaultRingSize
	}
	if s.Snaplen == 0 {
		s.Snaplen = DefaultSnaplen
	}
	if s.FlowIdle == 0 {
		s.FlowIdle = DefaultFlowIdle
	}
	if s.MaxFlows == 0 {
		s.MaxFlows = DefaultMaxFlows
	}
	var errs []error
	if s.Interface == "" {
		errs = append(errs, errors.New("no interface given"))
	}
	if s.Mode > ModePackets {
		errs = append(errs, fmt.Errorf("unknown mode %d", s.Mode))
	}
	if s.RingSize < minRingSize || s.RingSize > maxRingSize {
		errs = append(errs, fmt.Errorf("ring size %d out of range [%d, %d]", s.RingSize, minRingSize, maxRingSize))
	}
	if s.Snaplen < minSnaplen || s.Snaplen > DefaultSnaplen {
		errs = append(errs, fmt.Errorf("snap length %d out of range [%d, %d]", s.Snaplen, minSnaplen, DefaultSnaplen))
	}
	if s.FlowIdle < 0 {
		errs = append(errs, fmt.Errorf("negative flow idle timeout %v", s.FlowIdle))
	}
	if s.MaxFlows < 0 || s.MaxFlows > 1<<22 {
		errs = append(errs, fmt.Errorf("max flows %d out of range [1, %d]", s.MaxFlows, 1<<22))
	}
	if s.Sink == nil {
		errs = append(errs, errors.New("no sink given"))
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("capture settings: %w", err)
	}
	return s, nil
}

// SegmentHeader returns the bytes each segment of a capture with these
// settings must begin with: nil in metadata mode (JSON Lines need none),
// the pcapng SHB and IDB in packets mode. The sink is configured with it.
// It looks up the interface's link type without opening anything.
func SegmentHeader(s Settings) ([]byte, error) {
	if s.Mode != ModePackets {
		return nil, nil
	}
	if s.Snaplen == 0 {
		s.Snaplen = DefaultSnaplen
	}
	link, err := interfaceLinkType(s.Interface)
	if err != nil {
		return nil, err
	}
	return PcapngHeader(link, s.Snaplen, s.CaseID), nil
}
