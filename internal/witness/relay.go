package witness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// The relay lets the service reach its witnesses without an IP socket of
// its own. Under the hardened systemd unit the service may open only Unix,
// netlink and packet sockets; a second unit, carrel-witness.service, runs
// `carrel witness-relay`: a process with no capability, no access to
// carrel's data folder and no other way out than the witnesses' addresses
// (its unit allows IP traffic to them alone, IPAddressDeny=any). The
// service asks it, over a Unix socket only root can use, for a connection
// to a witness's host and port, in the form of an HTTP CONNECT request:
//
//	CONNECT host:port HTTP/1.1\r\n
//	Host: host:port\r\n
//	\r\n
//
// The relay answers 200 and from then on copies bytes both ways, or
// refuses (403 for a destination that is not a witness in the config, 502
// when the witness cannot be reached). TLS runs end to end between the
// service and the witness: the relay sees neither checkpoint nor answer in
// the clear, and parses nothing the witness sends.

// RelayEnv names the environment variable that tells `carrel run` to reach
// witnesses through the relay's socket; the hardened unit sets it.
const RelayEnv = "CARREL_WITNESS_RELAY"

// DefaultRelaySocket is where carrel-witness.service listens.
const DefaultRelaySocket = "/run/carrel-witness/relay.sock"

// DialRelay returns a Dial for Options that connects to addr (host:port)
// through the relay listening on socket.
func DialRelay(socket string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			return nil, fmt.Errorf("reaching the witness relay at %s (is carrel-witness.service running?): %w", socket, err)
		}
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		} else {
			c.SetDeadline(time.Now().Add(relayHandshake))
		}
		if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr); err != nil {
			c.Close()
			return nil, fmt.Errorf("asking the witness relay for %s: %w", addr, err)
		}
		br := bufio.NewReaderSize(c, 1024)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("asking the witness relay for %s: %w", addr, err)
		}
		if resp.StatusCode != http.StatusOK {
			msg := make([]byte, 512)
			n, _ := resp.Body.Read(msg)
			resp.Body.Close()
			c.Close()
			return nil, fmt.Errorf("the witness relay refused %s: %s: %s", addr, resp.Status, quoteBody(msg[:n]))
		}
		c.SetDeadline(time.Time{})
		if br.Buffered() > 0 {
			// The witness never speaks first, in HTTP or TLS; bytes here
			// would be the relay's mistake.
			c.Close()
			return nil, fmt.Errorf("the witness relay sent data before the connection to %s was used", addr)
		}
		return c, nil
	}
}

// relayHandshake bounds the CONNECT exchange with the relay when the
// caller set no deadline.
const relayHandshake = 30 * time.Second

// hostPort returns the host:port a witness URL is reached at.
func hostPort(rawURL string) (string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", fmt.Errorf("witness URL %q has no scheme", rawURL)
	}
	host, _, _ := strings.Cut(rest, "/")
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host, nil
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port), nil
}
