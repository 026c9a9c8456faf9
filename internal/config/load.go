package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxFileSize bounds what is read of a config file: a real one is a few
// KiB, and a file made to exhaust memory must not be read whole.
const MaxFileSize = 1 << 20

// ErrNotFound is returned (wrapped) when the config file does not exist.
var ErrNotFound = errors.New("config file not found")

// Refused is the error of a config file that was read and must not be
// used: other accounts could have written it (Permissions), or its content
// is wrong (Problems), or both. Any other error of Load means the file
// could not be opened or read at all (missing, EMFILE, EIO): that says
// nothing about the file, and a service keeps its config and tries again.
type Refused struct {
	Path string
	// SHA256 is the digest of the bytes that were read and judged; zero
	// when nothing could be read.
	SHA256      [32]byte
	Permissions *PermissionError // nil when no account but root and the service can write it
	Problems    Problems         // nil when the content is valid
}

func (e *Refused) Error() string {
	var parts []string
	if e.Permissions != nil {
		parts = append(parts, e.Permissions.Error())
	}
	if len(e.Problems) > 0 {
		parts = append(parts, e.Problems.Error())
	}
	return fmt.Sprintf("config %q: %s", e.Path, strings.Join(parts, "\n"))
}

// Unwrap lets errors.As find the *PermissionError and the Problems.
func (e *Refused) Unwrap() []error {
	var errs []error
	if e.Permissions != nil {
		errs = append(errs, e.Permissions)
	}
	if len(e.Problems) > 0 {
		errs = append(errs, e.Problems)
	}
	return errs
}

// Hint is the fix for the permissions, when they are what is wrong.
func (e *Refused) Hint() string {
	if e.Permissions != nil {
		return e.Permissions.Hint()
	}
	return ""
}

// IsRefusal reports whether err says that a config file is wrong (its
// content or its permissions), as opposed to that it could not be read.
func IsRefusal(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}

// Load reads the config file at path and returns it only when it may be
// put in force. The file is opened once, and everything is judged on that
// one open file: its owner and mode (fstat of the descriptor; ACLs on
// Windows), every folder and link on the way to it as given and as
// resolved (each followed link's own folder included), and the bytes read
// from that descriptor, which are the ones parsed and digested. Nothing is
// looked up by name twice, so a link swapped during the check cannot put
// an unchecked file in force.
//
// The error is a *Refused (see IsRefusal) listing every problem, or says
// why the file could not be read (wrapping ErrNotFound when it is absent).
func Load(path string) (*Config, error) {
	c, err := Inspect(path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Inspect is Load for reporting (`carrel config check`): when the file is
// refused it also returns what could be parsed, so that problems inside
// cases can be listed beside the others. A config returned with an error
// must never be put in force.
func Inspect(path string) (*Config, error) {
	f, perms, err := openConfig(path)
	if err != nil {
		return nil, err
	}
	if f == nil { // refused before a file was reached: a link loop, not a regular file
		return nil, &Refused{Path: path, Permissions: &PermissionError{Problems: dedupe(perms)}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	ref := &Refused{Path: path, SHA256: sha256.Sum256(data)}
	if len(perms) > 0 {
		ref.Permissions = &PermissionError{Problems: dedupe(perms)}
	}
	var c *Config
	if len(data) > MaxFileSize {
		ref.Problems = Problems{{Key: "(file)", Msg: fmt.Sprintf("larger than %d KiB: not a carrel config", MaxFileSize>>10)}}
	} else {
		c, err = Parse(data)
		if c != nil {
			c.Path = path
		}
		if err != nil && !errors.As(err, &ref.Problems) {
			return nil, fmt.Errorf("config %q: %w", path, err) // not reached: Parse returns Problems
		}
	}
	if ref.Permissions != nil || ref.Problems != nil {
		return c, ref
	}
	return c, nil
}
