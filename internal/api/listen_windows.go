package api

import (
	"errors"
	"fmt"
	"net"
	"os/user"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// ErrNoGroup is returned (wrapped) when the configured booking-client group
// does not exist; the daemon then serves only Administrators and itself.
var ErrNoGroup = errors.New("booking-client group does not exist")

// Listen opens the API's named pipe. Its ACL (pipeSDDL) grants full access
// to SYSTEM, Administrators and the service's account, and read/write to
// the booking-client group only, so other accounts cannot even open it;
// go-winio also rejects remote clients. Each request is checked again from
// the caller's process token.
//
// Listen refuses (wrapping ErrPipeTaken, and naming the program) when a
// pipe of that name already exists: another program made it first, and
// clients could be connected to either. Windows refuses the first
// instance itself, since go-winio creates it with FILE_CREATE (what
// FILE_FLAG_FIRST_PIPE_INSTANCE asks for), which closes the race after the
// check below; the check names the holder, and is the only refusal under
// Wine, which lets a first instance join an existing pipe.
func Listen(path string, group string) (net.Listener, *Authorizer, error) {
	if pipeExists(path) {
		return nil, nil, takenBy(path)
	}
	self := selfSID()
	allow := []string{sidSystem, sidAdministrators}
	if self != "" {
		allow = append(allow, self)
	}
	groupSID := ""
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			groupSID = g.Gid // on Windows, Gid is the group's SID
			allow = append(allow, groupSID)
		}
	}
	sddl := pipeSDDL(pipeOwnerSID(self, mayOwnAsAdministrators()), self, groupSID)
	l, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: sddl, InputBufferSize: 4096, OutputBufferSize: 65536})
	if err != nil {
		if pipeExists(path) {
			return nil, nil, takenBy(path)
		}
		return nil, nil, fmt.Errorf("listening on API pipe %q: %w", path, err)
	}
	return l, &Authorizer{AllowSIDs: allow}, nil
}

// GroupMissing reports whether group is configured but absent on this PC.
func GroupMissing(group string) error {
	if group == "" {
		return nil
	}
	if _, err := user.LookupGroup(group); err != nil {
		return fmt.Errorf("%w: %q; only Administrators and the service can use the API until the local group is created and the booking client's account is added to it", ErrNoGroup, group)
	}
	return nil
}

// peerOf reads the identity of the pipe's client from its process token.
// The process, not an impersonation of the client: go-winio's clients
// connect at the Anonymous impersonation level, which reveals nothing, and
// the process token is what the kernel says the client runs as.
func peerOf(c net.Conn) (Peer, error) {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return Peer{}, fmt.Errorf("not a named pipe connection")
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(windows.Handle(f.Fd()), &pid); err != nil {
		return Peer{}, fmt.Errorf("GetNamedPipeClientProcessId: %w", err)
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return Peer{}, fmt.Errorf("opening client process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return Peer{}, fmt.Errorf("opening client token: %w", err)
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return Peer{}, fmt.Errorf("reading client token: %w", err)
	}
	p := Peer{PID: int32(pid), SID: u.User.Sid.String()}
	if acct, dom, _, err := u.User.Sid.LookupAccount(""); err == nil {
		p.Name = dom + `\` + acct
	}
	groups, err := tok.GetTokenGroups()
	if err != nil {
		return Peer{}, fmt.Errorf("reading client groups: %w", err)
	}
	for _, g := range groups.AllGroups() {
		// Only groups enabled in the token count (not deny-only ones).
		if g.Attributes&windows.SE_GROUP_ENABLED != 0 {
			p.SIDs = append(p.SIDs, g.Sid.String())
		}
	}
	return p, nil
}

func selfSID() string {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return ""
	}
	return u.User.Sid.String()
}

// mayOwnAsAdministrators reports whether this process's token holds the
// Administrators group enabled and with the owner attribute, so that it
// may name that group as the owner of what it creates (an elevated
// administrator; SYSTEM holds it too).
func mayOwnAsAdministrators() bool {
	groups, err := windows.GetCurrentProcessToken().GetTokenGroups()
	if err != nil {
		return false
	}
	for _, g := range groups.AllGroups() {
		if g.Sid.String() == sidAdministrators {
			return g.Attributes&windows.SE_GROUP_ENABLED != 0 && g.Attributes&windows.SE_GROUP_OWNER != 0
		}
	}
	return false
}
