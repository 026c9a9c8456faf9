package netlab

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frames made here feed capture without a network: its tests decode them
// directly, and bench/capture replays them with tcpreplay. The MACs are
// locally administered and belong to no interface, so a receiving host's
// IP stack drops the frames at once while AF_PACKET sockets still see them.
var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
)

// Frame returns an Ethernet frame from src to dst carrying l4 (a
// *layers.TCP or *layers.UDP with its ports set) and payload, with lengths
// and checksums filled in.
func Frame(src, dst netip.Addr, l4 gopacket.SerializableLayer, payload []byte) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	proto := layers.IPProtocolUDP
	if _, ok := l4.(*layers.TCP); ok {
		proto = layers.IPProtocolTCP
	}
	var ip gopacket.NetworkLayer
	var ipl gopacket.SerializableLayer
	if src.Is4() {
		v := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ipl = v, v
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, ipl = v, v
	}
	switch l := l4.(type) {
	case *layers.TCP:
		l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		l.SetNetworkLayerForChecksum(ip)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ipl, l4, gopacket.Payload(payload)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ClientHello returns the bytes Go's own TLS client sends first: a real
// ClientHello record for serverName.
func ClientHello(serverName string) []byte {
	c := &recordingConn{}
	_ = tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake() // fails at the first read, after the hello is written
	return c.buf.Bytes()
}

// recordingConn keeps what is written to it; reading fails.
type recordingConn struct{ buf bytes.Buffer }

func (c *recordingConn) Read([]byte) (int, error)         { return 0, errors.New("no server") }
func (c *recordingConn) Write(b []byte) (int, error)      { return c.buf.Write(b) }
func (c *recordingConn) Close() error                     { return nil }
func (c *recordingConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *recordingConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *recordingConn) SetDeadline(time.Time) error      { return nil }
func (c *recordingConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }
