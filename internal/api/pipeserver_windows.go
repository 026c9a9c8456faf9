package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// inspectPipe reads who serves the pipe instance h is connected to: the
// owner of the pipe's security descriptor (readable by every client: the
// pipe's access list gives the booking-client group READ_CONTROL), and the
// serving process where the caller may see it. It sends nothing.
func inspectPipe(h windows.Handle) (pipeServer, error) {
	var s pipeServer
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return s, fmt.Errorf("reading the pipe's owner: %w", err)
	}
	if owner, _, err := sd.Owner(); err == nil && owner != nil {
		s.Owner = owner.String()
		s.OwnerName = accountName(owner)
	}
	var pid uint32
	if windows.GetNamedPipeServerProcessId(h, &pid) == nil {
		s.PID = pid
		s.Image, s.User = processIdentity(pid)
	}
	return s, nil
}

// processIdentity returns the program and account of process pid, each
// "" when the caller may not read it.
func processIdentity(pid uint32) (image, user string) {
	p, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return "", ""
	}
	defer windows.CloseHandle(p)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if windows.QueryFullProcessImageName(p, 0, &buf[0], &n) == nil {
		image = windows.UTF16ToString(buf[:n])
	}
	var tok windows.Token
	if windows.OpenProcessToken(p, windows.TOKEN_QUERY, &tok) == nil {
		defer tok.Close()
		if u, err := tok.GetTokenUser(); err == nil {
			user = accountName(u.User.Sid)
			if user == "" {
				user = u.User.Sid.String()
			}
		}
	}
	return image, user
}

// accountName is DOMAIN\name of sid, or "" when it cannot be looked up.
func accountName(sid *windows.SID) string {
	acct, dom, _, err := sid.LookupAccount("")
	if err != nil {
		return ""
	}
	if dom == "" {
		return acct
	}
	return dom + `\` + acct
}

// verifyPipeServer refuses a connection to a pipe that carrel's service
// cannot have made, before anything is sent on it.
func verifyPipeServer(c net.Conn, pipe string) error {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return fmt.Errorf("%q: not a named pipe connection", pipe)
	}
	s, err := inspectPipe(windows.Handle(f.Fd()))
	return checkPipeServer(pipe, selfSID(), s, err)
}

var procWaitNamedPipeW = windows.NewLazySystemDLL("kernel32.dll").NewProc("WaitNamedPipeW")

// pipeExists reports whether a pipe of this name exists, without
// connecting to it: WaitNamedPipe fails with ERROR_FILE_NOT_FOUND only
// when there is none; otherwise it finds a free instance or times out
// waiting for one (1 ms).
func pipeExists(path string) bool {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return false
	}
	r, _, err := procWaitNamedPipeW.Call(uintptr(unsafe.Pointer(p)), 1)
	return r != 0 || !errors.Is(err, windows.ERROR_FILE_NOT_FOUND)
}

// takenBy asks the program holding the pipe name path who it is: it
// connects (at the anonymous impersonation level, so that program cannot
// act as the service's account), reads the owner and the serving process,
// and disconnects without sending anything.
func takenBy(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := winio.DialPipeAccessImpLevel(ctx, path, windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES, winio.PipeImpLevelAnonymous)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("all its instances are busy")
		}
		return pipeTakenError(path, nil, err)
	}
	defer c.Close()
	s, err := inspectPipe(windows.Handle(c.(interface{ Fd() uintptr }).Fd()))
	if err != nil {
		return pipeTakenError(path, nil, err)
	}
	return pipeTakenError(path, &s, nil)
}
