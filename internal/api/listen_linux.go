package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Listen opens the API's Unix socket at path, readable and writable only by
// its owner (the service) and by group (the booking-client group, when it
// exists; otherwise the service's own group). A stale socket left by a
// crash is replaced; any other file at path is an error, never deleted.
func Listen(path string, group string) (net.Listener, *Authorizer, error) {
	auth, gid, err := authorizer(group)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating API socket folder: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("API socket %q: a file that is not a socket is in the way; move it", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("API socket %q: another carrel is already serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("removing stale API socket: %w", err)
		}
	}
	// The umask makes the socket 0660 from the moment it exists: chmod after
	// bind would leave a window in which anyone could connect.
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, nil, fmt.Errorf("listening on API socket %q: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, nil, fmt.Errorf("giving API socket to group %q: %w", group, err)
		}
	}
	return l, auth, nil
}

// ErrNoGroup is returned (wrapped) when the configured booking-client group
// does not exist; the daemon then serves only root and itself, and warns.
var ErrNoGroup = errors.New("booking-client group does not exist")

func authorizer(group string) (*Authorizer, int, error) {
	a := &Authorizer{SelfUID: uint32(os.Geteuid())}
	if group == "" {
		return a, -1, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return a, -1, nil // GroupMissing reports it; the API still serves root and the service
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil, -1, fmt.Errorf("group %q has a non-numeric id %q", group, g.Gid)
	}
	a.Group, a.HasGroup = uint32(gid), true
	return a, gid, nil
}

// GroupMissing reports whether group is configured but absent on this PC.
func GroupMissing(group string) error {
	if group == "" {
		return nil
	}
	if _, err := user.LookupGroup(group); err != nil {
		return fmt.Errorf("%w: %q; only root and the service can use the API until it is created (groupadd --system %s) and the booking client's account is added to it", ErrNoGroup, group, group)
	}
	return nil
}

// peerOf asks the kernel who is on the other end of c: SO_PEERCRED for the
// user and primary group, SO_PEERGROUPS for the supplementary groups. The
// account name is looked up only when needed (lookupName).
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var p Peer
	var serr error
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			serr = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		p = Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
		p.Groups, serr = peerGroups(int(fd))
	})
	if err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, serr
	}
	return p, nil
}

func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno == unix.ERANGE && int(n/4) > len(buf) {
			buf = make([]uint32, n/4)
			continue
		}
		if errno != 0 {
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
		return buf[:n/4], nil
	}
}
