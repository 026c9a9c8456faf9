package capture

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/carrel-lib/carrel/internal/netlab"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// TestEngineQUIC: real HTTP/3 connections (quic-go client and server, QUIC
// v1 and v2, IPv4 and IPv6) between the lab's namespaces, captured live by
// the engine and by tcpdump: the engine's server names, the names
// `traffic decode` finds in tcpdump's pcap, and tshark's
// tls.handshake.extensions_server_name for the QUIC packets all agree.
// Go's ClientHello (with its post-quantum key share) is larger than one
// Initial packet, so each name here is reassembled from two.
func TestEngineQUIC(t *testing.T) {
	testenv.NeedTool(t, "tcpdump", "tshark")
	lab := netlab.New(t)
	conns := []struct {
		name string
		addr netip.Addr
		v    quic.Version
	}{
		{"h3.example.test", lab.Server4, quic.Version1},
		{"h3-v2.example.test", lab.Server4, quic.Version2},
		{"h3-six.example.test", lab.Server6, quic.Version1},
	}
	var names []string
	for _, c := range conns {
		names = append(names, c.name)
	}
	slices.Sort(names)
	lab.StartHTTP3(names...)

	pcap := filepath.Join(lab.Dir, "quic.pcap")
	// -U: each packet reaches the file as it is captured.
	td := lab.Start(lab.PC, "tcpdump", "-i", lab.PCIf, "-U", "-n", "-w", pcap)
	waitFor(t, "tcpdump to start capturing", func() bool {
		fi, err := os.Stat(pcap)
		return err == nil && fi.Size() >= 24
	})
	sink := newWatchSink(t.TempDir())
	var e Engine
	startEngine(t, lab, &e, Settings{Sink: sink})

	for _, c := range conns {
		if body, err := lab.HTTP3Get(c.name, c.addr, c.v); err != nil || body != "hello over HTTP/3 for "+c.name {
			t.Fatalf("HTTP/3 GET https://%s/ (%v) = %q, %v", c.name, c.v, body, err)
		}
	}
	sendMarker(t, lab, marker)
	sink.waitUntil(t, "the engine to record the marker", hasRecord(`"name":"`+marker+`"`))
	waitFor(t, "the marker in tcpdump's file", func() bool { return fileHasName(pcap, marker) })
	td.Signal(syscall.SIGINT)
	st := e.Stop()
	t.Logf("engine: %+v", st)

	quicNames := func(recs []Record) []string {
		var out []string
		for _, r := range recs {
			if r.Kind == KindTLS && r.QUIC && r.Proto == protoUDP && r.DstPort == 443 {
				out = append(out, r.SNI)
			}
		}
		return distinct(out)
	}
	if got := quicNames(sink.records(t)); !slices.Equal(got, names) {
		t.Errorf("live capture: QUIC server names %q; want %q", got, names)
	}
	f, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem := &memSink{}
	if _, err := DecodeCapture(f, mem); err != nil {
		t.Fatalf("decoding tcpdump's pcap: %v", err)
	}
	var offline []Record
	for _, l := range mem.lines {
		r, err := DecodeJSON(l)
		if err != nil {
			t.Fatal(err)
		}
		offline = append(offline, r)
	}
	if got := quicNames(offline); !slices.Equal(got, names) {
		t.Errorf("tcpdump's pcap: QUIC server names %q; want %q", got, names)
	}
	out, err := execOut("tshark", "-r", pcap, "-Y", "quic", "-T", "fields", "-e", "tls.handshake.extensions_server_name")
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	ts := distinct(strings.Fields(strings.ReplaceAll(out, ",", " ")))
	if !slices.Equal(ts, names) {
		t.Errorf("tshark -Y quic: server names %q; carrel %q", ts, names)
	}
	// The ClientHellos really spanned two Initial packets: tshark counts
	// the CRYPTO fragments it reassembled.
	frag, _ := execOut("tshark", "-r", pcap, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "quic.crypto.fragment.count")
	t.Logf("tshark: CRYPTO fragments per ClientHello: %q", strings.Fields(frag))
}
