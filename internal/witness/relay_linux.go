package witness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Relay is the witness relay (relay.go): it takes CONNECT requests for a
// witness's host:port from root on its Unix socket and connects them to
// that witness's addresses, and to nothing else.
type Relay struct {
	// Allowed are the destinations, as `carrel witness-relay allow`
	// resolved them when the unit started.
	Allowed []Allowed
	// Configured returns the witnesses' URLs in the config now. A request
	// for a destination the config lists but Allowed lacks means the list
	// changed since the start: the relay answers 503 and calls Restart, and
	// systemd starts it again with the new list. Any other destination is
	// refused (403).
	Configured func() ([]string, error)
	Restart    func()
	Log        *slog.Logger
	// DialTimeout bounds a connection to a witness; Idle, how long a
	// connection may carry no byte either way. Defaults: 15 s, 2 min.
	DialTimeout, Idle time.Duration
	// MaxConns bounds the connections relayed at once (default 16).
	MaxConns int
}

// ListenRelay makes the relay's socket at path, usable by root only.
func ListenRelay(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing an old relay socket: %w", err)
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on the relay socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve relays the connections l accepts until ctx ends.
func (r *Relay) Serve(ctx context.Context, l net.Listener) error {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = 15 * time.Second
	}
	if r.Idle <= 0 {
		r.Idle = 2 * time.Minute
	}
	if r.MaxConns <= 0 {
		r.MaxConns = 16
	}
	go func() { <-ctx.Done(); l.Close() }()
	slots := make(chan struct{}, r.MaxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting on the relay socket: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			r.Log.Warn("relay busy; refusing a connection", "max", r.MaxConns)
			reply(c, http.StatusServiceUnavailable, "the relay is relaying its limit of connections")
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r.handle(ctx, c)
		}()
	}
}

// handle serves one connection from the service.
func (r *Relay) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	uid, err := peerUID(c)
	if err != nil || uid != 0 && uid != os.Getuid() {
		r.Log.Warn("relay refused a connection from another account", "uid", uid, "err", err)
		return
	}
	c.SetDeadline(time.Now().Add(r.DialTimeout))
	br := bufio.NewReaderSize(io.LimitReader(c, 4096), 1024)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		reply(c, http.StatusBadRequest, "the relay takes CONNECT host:port only")
		return
	}
	dest := req.RequestURI
	i := slices.IndexFunc(r.Allowed, func(a Allowed) bool { return a.HostPort == dest })
	if i < 0 {
		r.unknown(c, dest)
		return
	}
	var up net.Conn
	var errs []error
	_, port, _ := net.SplitHostPort(dest)
	d := net.Dialer{Timeout: r.DialTimeout}
	for _, ip := range r.Allowed[i].Addrs {
		up, err = d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
		if err == nil {
			break
		}
		errs = append(errs, err)
	}
	if up == nil {
		r.Log.Warn("relay cannot reach a witness", "destination", dest, "err", errors.Join(errs...))
		reply(c, http.StatusBadGateway, fmt.Sprintf("cannot reach %s: %v", dest, errors.Join(errs...)))
		return
	}
	defer up.Close()
	if br.Buffered() > 0 {
		reply(c, http.StatusBadRequest, "data after the CONNECT request")
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	r.Log.Debug("relaying", "destination", dest, "to", up.RemoteAddr().String())
	done := make(chan struct{}, 2)
	go func() { r.pipe(up, c); done <- struct{}{} }()
	go func() { r.pipe(c, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// unknown answers a request for a destination not in Allowed.
func (r *Relay) unknown(c net.Conn, dest string) {
	if r.Configured != nil {
		urls, err := r.Configured()
		if err == nil {
			for _, u := range urls {
				if hp, err := hostPort(u); err == nil && hp == dest {
					r.Log.Info("the config lists a witness the relay was not started with; restarting to take it up", "destination", dest)
					if r.Restart != nil {
						r.Restart()
					}
					reply(c, http.StatusServiceUnavailable, "the witness list changed; the relay restarts to take it up")
					return
				}
			}
		}
	}
	r.Log.Warn("relay refused a destination that is not a witness", "destination", dest)
	reply(c, http.StatusForbidden, fmt.Sprintf("%s is not a witness in the config", dest))
}

// pipe copies src to dst until either side closes or no byte passes for
// Idle, then closes both.
func (r *Relay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		src.SetReadDeadline(time.Now().Add(r.Idle))
		n, err := src.Read(buf)
		if n > 0 {
			dst.SetWriteDeadline(time.Now().Add(r.Idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func reply(c net.Conn, status int, msg string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(msg)+1, msg+"\n")
}

// peerUID asks the kernel which account is on the other end of c.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, fmt.Errorf("not a Unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var serr error
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			serr = err
			return
		}
		uid = int(cred.Uid)
	})
	if err == nil {
		err = serr
	}
	return uid, err
}
