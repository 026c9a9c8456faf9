package keyfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StepHook is called, when set, after each step of writing a file: "temp"
// (the temporary file exists, empty), "written", "synced", "named" (the
// file has its name) and "done" (the folder is synced). Crash tests in a
// child process report the step, and the parent kills the child there.
// It is nil outside tests.
var StepHook func(step string)

func step(s string) {
	if StepHook != nil {
		StepHook(s)
	}
}

// Create writes data to a new file at path, whole or not at all, and
// fails with an error wrapping fs.ErrExist when path exists (as a file, a
// folder or a symlink, dangling or not). The file is readable and writable
// by its owner only: mode 0600 on Linux; on Windows it gets the security
// descriptor sddl (in SDDL form) from its creation on, or the folder's
// inherited rights when sddl is "".
//
// Callers create a file only when they found it missing; a caller that
// gets fs.ErrExist lost a race with another process, and reads that
// process's file.
func Create(path string, data []byte, sddl string) error {
	return write(path, data, sddl, false)
}

// Replace writes data to path, whole or not at all, replacing the file
// there: at every moment path holds the old content or the new. Rights as
// for Create.
func Replace(path string, data []byte, sddl string) error {
	return write(path, data, sddl, true)
}

// Remove removes the file at path and syncs its folder, so that the
// removal survives a power loss. A file already gone is no error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}

func write(path string, data []byte, sddl string, replace bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeLeftovers(dir, base)
	t, err := createTemp(dir, base, sddl)
	if err != nil {
		return fmt.Errorf("creating a temporary file beside %s: %w", path, err)
	}
	step("temp")
	named := false
	defer func() {
		if !named {
			t.discard()
		}
	}()
	if _, err := t.f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", t.f.Name(), err)
	}
	step("written")
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", t.f.Name(), err)
	}
	step("synced")
	if err := t.name(path, replace); err != nil {
		return err
	}
	named = true
	step("named")
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	step("done")
	return nil
}

// Temporary files are named .<target>.<16 hex digits>.tmp beside the
// target, so that one left by a crash is recognised and removed by the
// next attempt.
const tempSuffix = ".tmp"

func tempName(base string) (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	return "." + base + "." + hex.EncodeToString(rnd[:]) + tempSuffix, nil
}

// isTempOf reports whether name is a temporary file for target base.
func isTempOf(name, base string) bool {
	prefix := "." + base + "."
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, tempSuffix) {
		return false
	}
	mid := name[len(prefix) : len(name)-len(tempSuffix)]
	if len(mid) != 16 {
		return false
	}
	_, err := hex.DecodeString(mid)
	return err == nil
}

// removeLeftovers removes the temporary files of base that earlier,
// crashed attempts left in dir; it leaves alone those another process is
// still writing. What it cannot remove stays: it costs a few bytes, and
// the file it was for does not depend on it.
func removeLeftovers(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() && isTempOf(e.Name(), base) {
			removeIfAbandoned(filepath.Join(dir, e.Name()))
		}
	}
}
