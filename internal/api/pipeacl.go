package api

import "fmt"

// The named pipe's access list, built here rather than in
// listen_windows.go so that it is tested on every platform.

// Well-known SIDs allowed on the pipe besides the booking-client group.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
)

// Access rights of a named pipe (winnt.h).
const (
	pipeReadData       = 0x00000001 // FILE_READ_DATA
	pipeWriteData      = 0x00000002 // FILE_WRITE_DATA
	pipeCreateInstance = 0x00000004 // FILE_CREATE_PIPE_INSTANCE (= FILE_APPEND_DATA)
	pipeReadEA         = 0x00000008
	pipeWriteEA        = 0x00000010
	pipeReadAttributes = 0x00000080
	pipeWriteAttrs     = 0x00000100
	pipeReadControl    = 0x00020000
	pipeSynchronize    = 0x00100000
	genericRead        = 0x80000000
)

// pipeClientRights are the booking-client group's rights on the pipe: all
// of GENERIC_READ and GENERIC_WRITE except FILE_CREATE_PIPE_INSTANCE, which
// GENERIC_WRITE includes. With it, a member could create an instance of
// carrel's pipe and answer other clients in carrel's place (pipe
// squatting).
const pipeClientRights = pipeReadData | pipeWriteData | pipeReadEA | pipeWriteEA |
	pipeReadAttributes | pipeWriteAttrs | pipeReadControl | pipeSynchronize

// PipeClientAccess is the access a client of the API must ask for when it
// opens the pipe (CreateFile's dwDesiredAccess): read and write data.
// Asking for GENERIC_WRITE is refused to the booking-client group, because
// GENERIC_WRITE includes FILE_CREATE_PIPE_INSTANCE.
const PipeClientAccess = genericRead | pipeWriteData

// pipeSDDL is the security descriptor of the API pipe: owned by owner
// (pipeOwnerSID; none named when empty), which clients check before they
// send anything (trustedPipeOwner); no access over the network; full
// access for SYSTEM, Administrators and the account carrel runs as (self,
// which must create new instances of the pipe); read and write for the
// booking-client group (groupSID; empty when there is none), which
// includes READ_CONTROL so that its members can read the owner. P:
// entries from above are not inherited.
func pipeSDDL(owner, self, groupSID string) string {
	s := "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"
	switch owner {
	case "":
	case sidSystem:
		s = "O:SY" + s
	case sidAdministrators:
		s = "O:BA" + s
	default:
		s = "O:" + owner + s
	}
	if self != "" && self != sidSystem && self != sidAdministrators {
		s += "(A;;GA;;;" + self + ")"
	}
	if groupSID != "" {
		s += fmt.Sprintf("(A;;0x%08x;;;%s)", pipeClientRights, groupSID)
	}
	return s
}
