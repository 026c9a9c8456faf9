package api

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"syscall"
	"time"
)

// dial connects to the socket. EAGAIN means its backlog is full: the
// service is working through a burst of connections (another account's
// flood, which it refuses quickly), so it is tried again until ctx ends.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		c, err := d.DialContext(ctx, "unix", addr)
		if !errors.Is(err, syscall.EAGAIN) {
			return c, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// notRunning tells "no service" from other failures such as a permission
// refusal, which must be reported as what it is.
func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}
