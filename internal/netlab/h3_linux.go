package netlab

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
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// StartHTTP3 runs quic-go's HTTP/3 server on UDP port 443 of the server
// namespace (both address families), speaking QUIC v1 and v2, with a
// self-signed certificate for names. Every request gets "hello over HTTP/3
// for HOST". Debian's curl has no HTTP/3; quic-go is a maintained QUIC
// implementation, used by tests only.
func (l *Lab) StartHTTP3(names ...string) {
	l.t.Helper()
	var pc net.PacketConn
	var err error
	l.Do(l.Server, func() { pc, err = net.ListenPacket("udp", ":443") })
	if err != nil {
		l.t.Fatalf("HTTP/3 server: %v", err)
	}
	cert, err := selfSigned(names)
	if err != nil {
		l.t.Fatalf("HTTP/3 server certificate: %v", err)
	}
	srv := &http3.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello over HTTP/3 for "+r.Host)
		}),
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		QUICConfig: &quic.Config{Versions: []quic.Version{quic.Version1, quic.Version2}},
	}
	go srv.Serve(pc)
	l.t.Cleanup(func() { srv.Close(); pc.Close() })
}

// HTTP3Get fetches https://name/ over HTTP/3 from the pc namespace, sending
// to addr port 443 with QUIC version v (quic.Version1 or quic.Version2),
// and returns the body. The client does not verify the certificate: the
// tests look at the ClientHello, not the server.
func (l *Lab) HTTP3Get(name string, addr netip.Addr, v quic.Version) (string, error) {
	var pc net.PacketConn
	var err error
	l.Do(l.PC, func() { pc, err = net.ListenPacket("udp", ":0") })
	if err != nil {
		return "", err
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
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+name+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func selfSigned(names []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
