package api

import (
	"context"
	"errors"
	"io/fs"
	"net"

	"github.com/Microsoft/go-winio"
)

func dial(ctx context.Context, addr string) (net.Conn, error) {
	return winio.DialPipeContext(ctx, addr)
}

func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
