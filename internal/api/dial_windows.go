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
// denied, so non-administrators would be refused. go-winio connects at the
// anonymous impersonation level, so whoever serves the pipe cannot act as
// the caller.
//
// Before anything is sent, the pipe must be one the carrel service made
// (verifyPipeServer): while the service is down, any account can make a
// pipe of its name and would otherwise be sent booking references and
// patron card numbers.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := winio.DialPipeAccess(ctx, addr, PipeClientAccess)
	if err != nil {
		return nil, err
	}
	if err := verifyPipeServer(c, addr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func notRunning(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
