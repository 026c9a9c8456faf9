package api

import (
	"context"
	"errors"
	"io/fs"
	"net"

	"github.com/Microsoft/go-winio"
)

// dial opens the pipe asking only for the rights the pipe's ACL grants the
// booking-client group: the default (GENERIC_READ|GENERIC_WRITE) includes
// the right to create pipe instances, which the group is deliberately
// denied, so non-administrators would be refused.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	return winio.DialPipeAccess(ctx, addr, PipeClientAccess)
}

func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
