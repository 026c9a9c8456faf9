package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/carrel-lib/carrel/internal/capture"
)

// dnsFrame is an Ethernet frame with a DNS query for name.
func dnsFrame(t *testing.T, name string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 200, 1, 2}, DstIP: net.IP{10, 200, 1, 1}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	dns := &layers.DNS{ID: 1, RD: true, Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, dns); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeCaptures(t *testing.T, dir string) (pcap, pcapng string) {
	t.Helper()
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	w.WriteFileHeader(65536, layers.LinkTypeEthernet)
	f := dnsFrame(t, "pcap.example.test")
	w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(f), Length: len(f)}, f)
	pcap = filepath.Join(dir, "a.pcap")
	os.WriteFile(pcap, b.Bytes(), 0o644)

	var nb bytes.Buffer
	nw, err := pcapgo.NewNgWriter(&nb, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	f = dnsFrame(t, "pcapng.example.test")
	nw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(f), Length: len(f)}, f)
	nw.Flush()
	pcapng = filepath.Join(dir, "b.pcapng")
	os.WriteFile(pcapng, nb.Bytes(), 0o644)
	return pcap, pcapng
}

func TestTrafficDecode(t *testing.T) {
	dir := t.TempDir()
	pcap, pcapng := writeCaptures(t, dir)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a capture at all\n"), 0o644)
	whole, _ := os.ReadFile(pcap)
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, whole[:len(whole)-10], 0o644)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
		stderr string
	}{
		{"pcap and pcapng", []string{"traffic", "decode", pcap, pcapng}, exitOK,
			[]string{`"name":"pcap.example.test"`, `"name":"pcapng.example.test"`, `"kind":"flow"`}, ""},
		{"not a capture", []string{"traffic", "decode", text}, exitFailure, nil, "not a pcap or pcapng capture"},
		{"truncated", []string{"traffic", "decode", cut}, exitFailure, nil, "truncated in record 1"},
		{"missing file", []string{"traffic", "decode", filepath.Join(dir, "nope.pcap")}, exitFailure, nil, "no such file"},
		{"no file", []string{"traffic", "decode"}, exitUsage, nil, "needs at least one capture FILE"},
		{"unknown subcommand", []string{"traffic", "frobnicate"}, exitUsage, nil, `unknown traffic subcommand "frobnicate"`},
		{"no subcommand", []string{"traffic"}, exitUsage, nil, "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("carrel %s = exit %d, stderr %q; want exit %d, stderr containing %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("carrel %s stdout =\n%s\nwant it to contain %s", strings.Join(tt.args, " "), stdout, want)
				}
			}
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				if line == "" {
					continue
				}
				if _, err := capture.DecodeJSON([]byte(line)); err != nil {
					t.Errorf("output line %q: %v", line, err)
				}
			}
		})
	}
}
