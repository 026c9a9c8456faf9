package capture

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/carrel-lib/carrel/internal/netlab"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// selfSigned returns a certificate for names, for the lab's HTTP/3 server
// (the client does not verify it: only the ClientHello matters here).
func selfSigned(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startH3 runs quic-go's HTTP/3 server on UDP port 443 of the lab's
// server namespace (both address families), speaking QUIC v1 and v2.
func startH3(t *testing.T, lab *netlab.Lab, names ...string) {
	t.Helper()
	var pc net.PacketConn
	var err error
	lab.Do(lab.Server, func() { pc, err = net.ListenPacket("udp", ":443") })
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello over HTTP/3 for "+r.Host)
		}),
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{selfSigned(t, names...)}}),
		QUICConfig: &quic.Config{Versions: []quic.Version{quic.Version1, quic.Version2}},
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Close(); pc.Close() })
}

// h3Get fetches https://name/ over HTTP/3 from the pc namespace, sending
// to addr, with QUIC version v, and returns the body.
func h3Get(t *testing.T, lab *netlab.Lab, name string, addr netip.Addr, v quic.Version) string {
	t.Helper()
	var pc net.PacketConn
	var err error
	lab.Do(lab.PC, func() { pc, err = net.ListenPacket("udp", ":0") })
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	rt := &http3.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		QUICConfig:      &quic.Config{Versions: []quic.Version{v}},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return tr.DialEarly(ctx, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 443)), tc, qc)
		},
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only stops a hang
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+name+"/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("HTTP/3 GET https://%s/ (QUIC %v): %v", name, v, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

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
	startH3(t, lab, names...)

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
		if body := h3Get(t, lab, c.name, c.addr, c.v); body != "hello over HTTP/3 for "+c.name {
			t.Fatalf("GET https://%s/ = %q", c.name, body)
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
