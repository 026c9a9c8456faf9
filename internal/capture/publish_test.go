package capture

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// trickleSource hands out one UDP frame every gap of packet time and never
// times out, as a capture sees a steady trickle of packets. Before packet
// number check it calls seen, so a test can look at what Stats showed then.
type trickleSource struct {
	frame []byte
	start time.Time
	gap   time.Duration
	n     int
	check int
	seen  func()
}

var errTrickleEnd = errors.New("end of the trickle")

func (s *trickleSource) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.n == s.check {
		s.seen()
		return nil, gopacket.CaptureInfo{}, errTrickleEnd
	}
	ts := s.start.Add(time.Duration(s.n) * s.gap)
	s.n++
	return s.frame, ci(ts, s.frame), nil
}
func (s *trickleSource) timeout(error) bool        { return false }
func (s *trickleSource) drops() uint64             { return 0 }
func (s *trickleSource) linkType() layers.LinkType { return layers.LinkTypeEthernet }
func (s *trickleSource) close()                    {}

// TestStatsFollowATrickle: a slow, steady trickle of packets (one every
// 20 ms, so a read never times out) must show in Stats within the promised
// 100 ms of packet time, not only every 1024 packets. Status showed 0
// packets for minutes on a quiet PC under a case.
func TestStatsFollowATrickle(t *testing.T) {
	frame := udpFrame(t, netip.MustParseAddr("10.0.0.2"), 40000, netip.MustParseAddr("10.0.0.1"), 9, []byte("x"))
	r := &run{iface: "test", stop: make(chan struct{}), done: make(chan struct{})}
	var shown uint64
	src := &trickleSource{frame: frame, start: time.Unix(1_800_000_000, 0), gap: 20 * time.Millisecond, check: 300,
		seen: func() { shown = r.stats().Packets }}
	p := testProcessor(t, &memSink{})
	work := make(chan *batch, batchCount)
	go func() {
		for range work {
		}
	}()
	r.capture(src, p, p.out, work)
	// 300 packets over 6 s of packet time: the count shown before the
	// last read may be at most 100 ms (5 packets) behind.
	if shown < 300-5 {
		t.Fatalf("Stats showed %d packets after 300 had been read over 6 s of packet time; want at least 295", shown)
	}
}
