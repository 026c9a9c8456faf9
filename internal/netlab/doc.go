// Package netlab builds small networks for tests: two network namespaces,
// a "pc" and a "server", joined by a veth pair with addresses in
// 10.200.N.0/24 and fd00:200::/64, where tests start real servers
// (dnsmasq, nginx, openssl s_server, quic-go's HTTP/3 server) and run real
// clients (dig, curl, openssl s_client, quic-go's HTTP/3 client). Traffic
// never leaves the pair. For feeding capture without a network it also
// makes single frames (Frame, ClientHello).
//
// It owns only the namespaces, links and processes it creates, and removes
// them all in t.Cleanup. It is imported only by tests (capture, and
// cmd/carrel's end-to-end capture test) and bench/capture. The lab needs
// root (testenv.NeedRoot) and works on Linux only; the frames work
// everywhere.
package netlab
