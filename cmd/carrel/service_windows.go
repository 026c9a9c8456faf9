package main

import (
	"fmt"
	"os/exec"
	"os/user"
	"strings"

	"github.com/carrel-lib/carrel/internal/config"
)

// secureDir gives a folder carrel created an ACL of SYSTEM and
// Administrators only, without inherited entries (ProgramData lets Users
// create and write files by default).
func secureDir(dir string, _ bool) error {
	out, err := exec.Command("icacls", append([]string{dir}, config.SecureACLArgs...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("securing %s: %v: %s", dir, err, out)
	}
	return nil
}

// ensureClientGroup creates the booking-client local group when missing,
// and checks that it exists afterwards: net.exe's exit status alone does
// not say so (Wine's net.exe has no localgroup command; it prints its
// usage and exits 0).
func ensureClientGroup(e *env, group string) error {
	if group == "" {
		return nil
	}
	if _, err := user.LookupGroup(group); err == nil {
		return nil
	}
	out, err := exec.Command("net", "localgroup", group, "/add", "/comment:May record bookings with carrel").CombinedOutput()
	if _, lookErr := user.LookupGroup(group); lookErr != nil {
		said := strings.TrimSpace(string(out))
		if err != nil {
			said = fmt.Sprintf("%v: %s", err, said)
		}
		return fmt.Errorf("creating the local group %q: the group does not exist after `net localgroup %s /add` (which said %q)", group, group, said)
	}
	fmt.Fprintf(e.stdout, "created the local group %s; add the booking client's account to it: net localgroup %s ACCOUNT /add\n", group, group)
	return nil
}

// installClientGroup is ensureClientGroup for `service install`: the
// service works without the group (Administrators and the service itself
// may use the API, and it names the missing group in its log and in
// `carrel status` at every start), so a group that cannot be created is a
// warning that says what to do, not a failed install.
func installClientGroup(e *env, group string) error {
	if err := ensureClientGroup(e, group); err != nil {
		fmt.Fprintf(e.stderr, "warning: %v\nthe service is installed without it: only Administrators can use the API until the group exists; create it with: net localgroup %s /add\n", err, group)
	}
	return nil
}
