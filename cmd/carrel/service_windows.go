package main

import (
	"fmt"
	"os/exec"
	"os/user"

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

// ensureClientGroup creates the booking-client local group when missing.
func ensureClientGroup(e *env, group string) error {
	if group == "" {
		return nil
	}
	if _, err := user.LookupGroup(group); err == nil {
		return nil
	}
	out, err := exec.Command("net", "localgroup", group, "/add", "/comment:May record bookings with carrel").CombinedOutput()
	if err != nil {
		return fmt.Errorf("creating the local group %q: %v: %s", group, err, out)
	}
	fmt.Fprintf(e.stdout, "created the local group %s; add the booking client's account to it: net localgroup %s ACCOUNT /add\n", group, group)
	return nil
}
