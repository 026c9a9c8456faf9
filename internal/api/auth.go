package api

import (
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Peer is the caller of a request as the operating system reports it, not
// as the caller claims.
type Peer struct {
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups (Linux)
	PID    int32
	Name   string   // account name, when it can be looked up
	SID    string   // Windows: the caller's user SID
	SIDs   []string // Windows: the caller's group SIDs
}

func (p Peer) String() string {
	switch {
	case p.SID != "" && p.Name != "":
		return fmt.Sprintf("%s (%s)", p.Name, p.SID)
	case p.SID != "":
		return p.SID
	case p.Name != "":
		return fmt.Sprintf("%s (uid %d)", p.Name, p.UID)
	default:
		return fmt.Sprintf("uid %d", p.UID)
	}
}

// Authorizer decides who may use the API: root / Administrators, the
// account the service runs as, and members of the booking-client group.
type Authorizer struct {
	SelfUID uint32
	// Group is the booking-client group's id; HasGroup is false when no
	// group is configured or it does not exist on this PC.
	Group    uint32
	HasGroup bool

	// Windows: SIDs that may call (Administrators, SYSTEM, the service's
	// own SID and the booking-client group).
	AllowSIDs []string
}

// Admin reports whether p administers the PC: root or the service's own
// account on Linux; SYSTEM or an elevated member of Administrators on
// Windows (only groups enabled in the token count, see peerOf).
func (a *Authorizer) Admin(p Peer) bool {
	if a == nil {
		return false
	}
	if len(a.AllowSIDs) > 0 {
		for _, s := range append([]string{p.SID}, p.SIDs...) {
			if s == sidSystem || s == sidAdministrators {
				return true
			}
		}
		return false
	}
	return p.UID == 0 || p.UID == a.SelfUID
}

// lookupName fills in the account name of a Linux peer. It is left out of
// peerOf, which runs for every connection, because a name service lookup
// can be slow; only messages and the audit log need the name. On Windows
// peerOf has it already.
func lookupName(p *Peer) {
	if p.Name != "" || p.SID != "" {
		return
	}
	if u, err := user.LookupId(strconv.FormatUint(uint64(p.UID), 10)); err == nil {
		p.Name = u.Username
	}
}

// Check returns "" when p may call, or a short reason why not.
func (a *Authorizer) Check(p Peer) string {
	if a == nil {
		return "no-policy"
	}
	if len(a.AllowSIDs) > 0 {
		for _, s := range append([]string{p.SID}, p.SIDs...) {
			if s != "" && slices.Contains(a.AllowSIDs, s) {
				return ""
			}
		}
		return "not-in-group"
	}
	if p.UID == 0 || p.UID == a.SelfUID {
		return ""
	}
	if a.HasGroup && (p.GID == a.Group || slices.Contains(p.Groups, a.Group)) {
		return ""
	}
	return "not-in-group"
}
