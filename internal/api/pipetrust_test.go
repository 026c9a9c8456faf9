package api

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const testPatronSID = "S-1-5-21-1004336348-1177238915-682003330-1002"

// TestTrustedPipeOwner: a client sends only to a pipe owned by SYSTEM,
// Administrators or its own account; never to one owned by another
// account or group, or by no one.
func TestTrustedPipeOwner(t *testing.T) {
	tests := []struct {
		owner, self string
		want        bool
	}{
		{sidSystem, testUserSID, true},
		{sidAdministrators, testUserSID, true},
		{testUserSID, testUserSID, true},
		{sidSystem, "", true},
		{testPatronSID, testUserSID, false},  // a patron's program
		{testGroupSID, testUserSID, false},   // even the booking-client group: any member could have made it
		{"S-1-5-32-545", testUserSID, false}, // Users
		{"S-1-1-0", testUserSID, false},      // Everyone
		{"S-1-5-19", testUserSID, false},     // LOCAL SERVICE
		{"S-1-5-21-0-0-0-513", testUserSID, false},
		{"", testUserSID, false}, // no owner
		{"", "", false},          // no owner, and the client's own SID unknown
		{testPatronSID, "", false},
		{strings.ToLower(sidSystem), testUserSID, false}, // SIDs are compared as Windows prints them
	}
	for _, tt := range tests {
		if got := trustedPipeOwner(tt.owner, tt.self); got != tt.want {
			t.Errorf("trustedPipeOwner(%q, %q) = %v; want %v", tt.owner, tt.self, got, tt.want)
		}
	}
}

// TestPipeOwnerSID: the service names an owner its clients trust: SYSTEM
// as the installed service, Administrators as an elevated administrator.
func TestPipeOwnerSID(t *testing.T) {
	tests := []struct {
		self       string
		adminOwner bool
		want       string
	}{
		{sidSystem, true, sidSystem},
		{sidSystem, false, sidSystem},
		{testUserSID, true, sidAdministrators},
		{testUserSID, false, testUserSID},
		{"", false, ""},
	}
	for _, tt := range tests {
		got := pipeOwnerSID(tt.self, tt.adminOwner)
		if got != tt.want {
			t.Errorf("pipeOwnerSID(%q, %v) = %q; want %q", tt.self, tt.adminOwner, got, tt.want)
		}
		// What the service names, a client of another account trusts
		// unless it is a non-administrator's own account.
		if trusted := trustedPipeOwner(got, testPatronSID); trusted != (tt.self == sidSystem || tt.adminOwner) {
			t.Errorf("a client of another account trusts the pipe of pipeOwnerSID(%q, %v): %v", tt.self, tt.adminOwner, trusted)
		}
	}
}

// TestCheckPipeServer: the refusal says which pipe, who serves it (quoted:
// account names and program paths come from other programs) and that
// nothing was sent, and wraps ErrPipeImpostor.
func TestCheckPipeServer(t *testing.T) {
	const pipe = `\\.\pipe\carrel`
	if err := checkPipeServer(pipe, testUserSID, pipeServer{Owner: sidSystem, PID: 4}, nil); err != nil {
		t.Errorf("a pipe owned by SYSTEM: %v", err)
	}
	tests := []struct {
		name string
		s    pipeServer
		err  error
		want []string
	}{
		{"patron", pipeServer{Owner: testPatronSID, OwnerName: `PC-01\patron`, PID: 4242, Image: `C:\Users\patron\squat.exe`},
			nil, []string{`"\\\\.\\pipe\\carrel" is served by "PC-01\\patron" (` + testPatronSID + `), process 4242 "C:\\Users\\patron\\squat.exe", not the carrel service; refusing to send booking data`}},
		{"no name", pipeServer{Owner: testPatronSID, PID: 4242},
			nil, []string{`is served by ` + testPatronSID + `, process 4242, not the carrel service`}},
		{"no owner", pipeServer{PID: 7, User: `PC-01\patron`},
			nil, []string{`is served by an unknown account (the pipe names no owner), process 7 running as "PC-01\\patron", not the carrel service`}},
		{"escapes", pipeServer{Owner: testPatronSID, OwnerName: "PC-01\\\x1b[32mcarrel", PID: 1, Image: "C:\\a\x1b]0;x\a.exe"},
			nil, []string{`"PC-01\\\x1b[32mcarrel"`, `"C:\\a\x1b]0;x\a.exe"`}},
		{"unreadable", pipeServer{}, errors.New("reading the pipe's owner: Access is denied."),
			[]string{`cannot tell who serves "\\\\.\\pipe\\carrel" (reading the pipe's owner: Access is denied.); refusing to send booking data`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPipeServer(pipe, testUserSID, tt.s, tt.err)
			if !errors.Is(err, ErrPipeImpostor) {
				t.Fatalf("checkPipeServer = %v; want an error wrapping ErrPipeImpostor", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("checkPipeServer = %v; want it to wrap %v", err, tt.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkPipeServer:\n%s\nwant it to contain\n%s", err, w)
				}
			}
			if strings.ContainsAny(err.Error(), "\x1b\a") {
				t.Errorf("checkPipeServer = %q: raw control characters from another program's names", err)
			}
		})
	}
}

// TestClientSaysImpostor: the client's error is the refusal itself, not
// the refusal buried under the HTTP request that never left.
func TestClientSaysImpostor(t *testing.T) {
	refusal := checkPipeServer(`\\.\pipe\carrel`, testUserSID, pipeServer{Owner: testPatronSID}, nil)
	c := NewClient(`\\.\pipe\carrel`)
	got := c.callError(&url.Error{Op: "Post", URL: "http://carrel/v1/bookings/start", Err: refusal})
	if got != refusal {
		t.Errorf("callError = %v; want %v", got, refusal)
	}
	other := c.callError(&url.Error{Op: "Post", URL: "http://carrel/v1/status", Err: fmt.Errorf("boom")})
	if errors.Is(other, ErrPipeImpostor) || !strings.Contains(other.Error(), "calling the carrel service") {
		t.Errorf("callError(boom) = %v", other)
	}
}

// TestPipeTakenError: the service's refusal names the program holding
// its pipe's name, or says why it could not ask.
func TestPipeTakenError(t *testing.T) {
	const pipe = `\\.\pipe\carrel`
	s := pipeServer{Owner: testPatronSID, OwnerName: `PC-01\patron`, PID: 4242, Image: `C:\Users\patron\squat.exe`, User: `PC-01\patron`}
	tests := []struct {
		s    *pipeServer
		why  error
		want string
	}{
		{&s, nil, `refusing to start: the API pipe's name is taken by another program: "\\\\.\\pipe\\carrel" already exists, made by "PC-01\\patron" (` +
			testPatronSID + `), process 4242 "C:\\Users\\patron\\squat.exe" running as "PC-01\\patron"; booking clients could be connected to it instead of carrel`},
		{nil, errors.New("all its instances are busy"), `already exists, made by another program (which could not be asked who it is: all its instances are busy)`},
		{nil, nil, `already exists, made by another program; `},
	}
	for _, tt := range tests {
		err := pipeTakenError(pipe, tt.s, tt.why)
		if !errors.Is(err, ErrPipeTaken) {
			t.Errorf("pipeTakenError = %v; want it to wrap ErrPipeTaken", err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("pipeTakenError:\n%s\nwant it to contain\n%s", err, tt.want)
		}
	}
}
