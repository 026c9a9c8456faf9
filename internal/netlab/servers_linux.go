package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// StartDNS runs dnsmasq in the server namespace on port 53 (UDP and TCP,
// both address families), answering names with their addresses (A or
// AAAA by family). Every other name under example.test gets NXDOMAIN;
// nothing is forwarded anywhere.
func (l *Lab) StartDNS(names map[string]netip.Addr) *Proc {
	l.t.Helper()
	testenv.NeedTool(l.t, "dnsmasq")
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address=" + l.Server4.String(), "--listen-address=" + l.Server6.String(),
		"--except-interface=lo", "--pid-file=", "--user=root", "--group=root", "--log-facility=-",
		"--local=/example.test/"}
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, n := range keys {
		args = append(args, fmt.Sprintf("--host-record=%s,%s", n, names[n]))
	}
	p := l.Start(l.Server, "dnsmasq", args...)
	l.WaitListening(l.Server, "udp", 53)
	l.WaitListening(l.Server, "tcp", 53)
	return p
}

// StartHTTP runs nginx in the server namespace on port 80 of both
// addresses; every request gets "ok".
func (l *Lab) StartHTTP() *Proc {
	l.t.Helper()
	testenv.NeedTool(l.t, "nginx")
	dir := filepath.Join(l.Dir, "nginx")
	os.MkdirAll(dir, 0o755)
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s:80;
		listen [%[3]s]:80;
		location / { return 200 "ok\n"; }
	}
}
`, dir, l.Server4, l.Server6)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	p := l.Start(l.Server, "nginx", "-e", "stderr", "-p", dir, "-c", path)
	l.WaitListening(l.Server, "tcp", 80)
	return p
}

// StartTLS runs `openssl s_server` in the server namespace on port 443
// with a fresh self-signed certificate. It accepts any server name.
func (l *Lab) StartTLS() *Proc {
	l.t.Helper()
	testenv.NeedTool(l.t, "openssl")
	key, cert := filepath.Join(l.Dir, "tls.key"), filepath.Join(l.Dir, "tls.crt")
	l.Run(l.Server, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=carrel test server")
	p := l.Start(l.Server, "openssl", "s_server", "-accept", "443", "-cert", cert, "-key", key, "-www", "-quiet")
	l.WaitListening(l.Server, "tcp", 443)
	return p
}

// SplitTCP makes the pc send TCP segments of at most about 250 bytes to
// the server, each as its own packet (no segmentation offload), so that a
// TLS ClientHello crosses several segments on the wire.
func (l *Lab) SplitTCP() {
	l.t.Helper()
	l.Run(l.PC, "ip", "link", "set", "dev", l.PCIf, "gso_max_segs", "1")
	l.Run(l.PC, "ip", "route", "replace", l.Server4.String()+"/32", "dev", l.PCIf, "mtu", "lock", "300")
}

// Resolve returns "name:port:addr" for curl --resolve.
func Resolve(name string, port int, a netip.Addr) string {
	if a.Is6() {
		return fmt.Sprintf("%s:%d:[%s]", name, port, a)
	}
	return fmt.Sprintf("%s:%d:%s", name, port, a)
}
