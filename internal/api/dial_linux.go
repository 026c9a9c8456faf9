package api

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"syscall"
)

func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", addr)
}

// notRunning tells "no service" from other failures such as a permission
// refusal, which must be reported as what it is.
func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}
