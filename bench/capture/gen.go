//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/carrel-lib/carrel/internal/netlab"
)

// writePcap writes frames to a pcap file.
func writePcap(path string, frames [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return err
	}
	ts := time.Unix(1700000000, 0)
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// build returns a frame from 10.200.250.1 to one of eight addresses next
// to it, chosen by sport.
func build(l4 gopacket.SerializableLayer, sport, dport int, payload []byte) []byte {
	switch l := l4.(type) {
	case *layers.UDP:
		l.SrcPort, l.DstPort = layers.UDPPort(sport), layers.UDPPort(dport)
	case *layers.TCP:
		l.SrcPort, l.DstPort = layers.TCPPort(sport), layers.TCPPort(dport)
	}
	f, err := netlab.Frame(netip.AddrFrom4([4]byte{10, 200, 250, 1}), netip.AddrFrom4([4]byte{10, 200, 250, byte(2 + sport%8)}), l4, payload)
	if err != nil {
		panic(err) // the layers above always serialise
	}
	return f
}

// runGen writes 4096 UDP frames of the given size (60 bytes = a 64-byte
// frame with its FCS; 1514 = a full Ethernet frame) over 512 flows.
func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	size := fs.Int("size", 60, "frame size without FCS")
	out := fs.String("out", "", "pcap file")
	fs.Parse(args)
	hdr := 14 + 20 + 8
	frames := make([][]byte, 4096)
	for i := range frames {
		frames[i] = build(&layers.UDP{}, 20000+i%512, 9, make([]byte, *size-hdr))
	}
	return writePcap(*out, frames)
}

// runGenMix writes n frames of a browsing-like mix: per 100 packets, 4
// DNS queries and answers, 2 TLS ClientHellos, 2 HTTP requests, one new
// HTTP/3 connection's first flight (its ClientHello in 2 QUIC Initial
// packets, from a new port each time), 20 QUIC 1-RTT packets of 1200
// bytes, and TCP data segments of 64 to 1460 bytes.
func runGenMix(args []string) error {
	fs := flag.NewFlagSet("genmix", flag.ExitOnError)
	n := fs.Int("n", 1000000, "packets")
	out := fs.String("out", "", "pcap file")
	fs.Parse(args)
	hello := netlab.ClientHello("www.example.test")
	quicHello := netlab.ClientHello("h3.example.test")[5:] // the handshake message, without its TLS record header
	dns := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
	httpReq := []byte("GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	oneRTT := append([]byte{0x41}, make([]byte, 1199)...)
	tmpl := make([][]byte, 100)
	for i := range tmpl {
		sport := 30000 + i
		switch {
		case i < 4:
			tmpl[i] = build(&layers.UDP{}, sport, 53, dns)
		case i < 6:
			tmpl[i] = build(&layers.TCP{Seq: 1, ACK: true, PSH: true, Window: 500}, sport, 443, hello)
		case i < 8:
			tmpl[i] = build(&layers.TCP{Seq: 1, ACK: true, PSH: true, Window: 500}, sport, 80, httpReq)
		case i < 10: // QUIC Initials: built per connection below
		case i < 30:
			tmpl[i] = build(&layers.UDP{}, 443, 50000+i%4, oneRTT)
		default:
			tmpl[i] = build(&layers.TCP{Seq: uint32(i * 1000), ACK: true, Window: 500}, 443, sport%50+40000, make([]byte, 64+(i*137)%1400))
		}
	}
	frames := make([][]byte, *n)
	var first []byte
	for i := range frames {
		switch k := i % 100; k {
		case 8:
			conn := i / 100
			dcid := binary.BigEndian.AppendUint64(nil, uint64(conn)*0x9e3779b97f4a7c15)
			q := newQUICClient(dcid)
			sport := 20000 + conn%40000
			first = build(&layers.UDP{}, sport, 443, q.initial(0, quicHello[:900]))
			frames[i] = first
			frames[i+min(1, len(frames)-i-1)] = build(&layers.UDP{}, sport, 443, q.initial(900, quicHello[900:]))
		case 9:
			// set with case 8
		default:
			frames[i] = tmpl[k]
		}
	}
	return writePcap(*out, frames)
}
