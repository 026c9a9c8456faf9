package api

import (
	"errors"
	"fmt"
	"strings"
)

// Who may serve the API's named pipe, and what is said when someone else
// does. Built here rather than in the _windows.go files so that it is
// tested on every platform.
//
// While the carrel service is down (stopped, or not yet started at boot)
// any local account can create a pipe of carrel's name and be sent what
// the booking client and `carrel booking` send: booking references and
// patron card numbers. So a client checks who made the pipe before it
// sends a byte, and the service refuses to start beside a pipe of its
// name that it did not make.

// ErrPipeImpostor is wrapped by the error of a client that found the API
// pipe made by an account that cannot be the carrel service, and sent it
// nothing.
var ErrPipeImpostor = errors.New("the API pipe is not served by the carrel service")

// ErrPipeTaken is wrapped by the error of a service that found its pipe's
// name already taken by another program, and did not start.
var ErrPipeTaken = errors.New("the API pipe's name is taken by another program")

// pipeServer is what a process can learn about who serves a pipe it has
// opened, without sending anything.
type pipeServer struct {
	// Owner is the SID that owns the pipe's security descriptor; "" when
	// it has none.
	Owner string
	// OwnerName is Owner's DOMAIN\name; "" when it cannot be looked up.
	OwnerName string
	// PID is the process serving the instance the client is connected
	// to; 0 when unknown.
	PID uint32
	// Image is that process's program; "" when the caller may not read it
	// (a booking client cannot read another account's processes).
	Image string
	// User is the DOMAIN\name (or SID) the serving process runs as; ""
	// when the caller may not read its token.
	User string
}

// trustedPipeOwner reports whether a pipe owned by owner can have been
// made by the carrel service, for a client running as self. Windows lets
// a program name as its objects' owner only its own account or a group
// its token holds with the owner attribute (Administrators, for an
// elevated administrator; SYSTEM's own SID for the service); anything
// else needs a privilege only administrators have. A patron's program
// therefore makes pipes owned by the patron, which this refuses. The
// client's own account is trusted too: a program of that account could
// read what the client sends anyway.
func trustedPipeOwner(owner, self string) bool {
	return owner != "" && (owner == sidSystem || owner == sidAdministrators || owner == self)
}

// pipeOwnerSID is the owner the service names in its pipe's security
// descriptor: SYSTEM when it runs as SYSTEM (the installed service);
// Administrators when its token may name that group as owner (an elevated
// administrator running `carrel run`); otherwise its own account. These
// are what Windows chooses when no owner is given; Wine chooses the
// account's primary group, which clients would refuse, so it is named
// explicitly. "" (no owner named) when self is unknown.
func pipeOwnerSID(self string, adminOwner bool) string {
	switch {
	case self == sidSystem:
		return sidSystem
	case adminOwner:
		return sidAdministrators
	default:
		return self
	}
}

// describe says who serves the pipe, from what is known: the owner's name
// and SID, and the serving process when the caller could see it. Names
// and paths come from other programs, so they are quoted.
func (s pipeServer) describe() string {
	var b strings.Builder
	switch {
	case s.Owner == "":
		b.WriteString("an unknown account (the pipe names no owner)")
	case s.OwnerName != "":
		fmt.Fprintf(&b, "%q (%s)", s.OwnerName, s.Owner)
	default:
		b.WriteString(s.Owner)
	}
	var proc []string
	if s.PID != 0 {
		p := fmt.Sprintf("process %d", s.PID)
		if s.Image != "" {
			p += fmt.Sprintf(" %q", s.Image)
		}
		proc = append(proc, p)
	}
	if s.User != "" {
		proc = append(proc, fmt.Sprintf("running as %q", s.User))
	}
	if len(proc) > 0 {
		fmt.Fprintf(&b, ", %s", strings.Join(proc, " "))
	}
	return b.String()
}

// PipeImpostorError is a client's refusal to use a pipe that another
// account made, or whose maker it could not read. It wraps
// ErrPipeImpostor, and the reading error if there was one.
type PipeImpostorError struct {
	Pipe   string
	server pipeServer
	err    error // why the server could not be inspected; nil when it was
}

func (e *PipeImpostorError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("cannot tell who serves %q (%v); refusing to send booking data", e.Pipe, e.err)
	}
	return fmt.Sprintf("%q is served by %s, not the carrel service; refusing to send booking data "+
		"(another program made the pipe while the service was down; an administrator should end it and start the carrel service)",
		e.Pipe, e.server.describe())
}

func (e *PipeImpostorError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrPipeImpostor, e.err}
	}
	return []error{ErrPipeImpostor}
}

// checkPipeServer is a client's decision on the pipe it opened, as self,
// given what inspecting it found (s) or why inspecting failed (err).
func checkPipeServer(pipe, self string, s pipeServer, err error) error {
	if err != nil {
		return &PipeImpostorError{Pipe: pipe, err: err}
	}
	if trustedPipeOwner(s.Owner, self) {
		return nil
	}
	return &PipeImpostorError{Pipe: pipe, server: s}
}

// pipeTakenError is the service's refusal to start beside a pipe of its
// name that another program made; s is what it could learn about that
// program (nil when it could not connect to ask), why says how it failed.
func pipeTakenError(pipe string, s *pipeServer, why error) error {
	who := "another program"
	if s != nil {
		who = s.describe()
	} else if why != nil {
		who = fmt.Sprintf("another program (which could not be asked who it is: %v)", why)
	}
	return fmt.Errorf("refusing to start: %w: %q already exists, made by %s; booking clients could be connected to it "+
		"instead of carrel, so carrel does not share the name; end that program, then start carrel again", ErrPipeTaken, pipe, who)
}
