package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
)

// secureDir closes a folder carrel created to writes by others; a private
// folder (the data folder) to reads too.
func secureDir(dir string, private bool) error {
	mode := os.FileMode(0o755)
	if private {
		mode = 0o700
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("securing %s: %w", dir, err)
	}
	return nil
}

// ensureClientGroup creates the booking-client group when it is missing,
// so that the booking client's account can be added to it.
func ensureClientGroup(e *env, group string) error {
	if group == "" {
		return nil
	}
	if _, err := user.LookupGroup(group); err == nil {
		return nil
	}
	out, err := exec.Command("groupadd", "--system", group).CombinedOutput()
	if err != nil {
		return fmt.Errorf("creating the booking-client group %q: %v: %s", group, err, out)
	}
	fmt.Fprintf(e.stdout, "created the group %s; add the booking client's account to it: usermod -aG %s ACCOUNT\n", group, group)
	return nil
}

// installClientGroup is ensureClientGroup for `service install`: on Linux
// a group that cannot be created fails the install.
func installClientGroup(e *env, group string) error { return ensureClientGroup(e, group) }
