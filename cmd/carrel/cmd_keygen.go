package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/carrel-lib/carrel/internal/seal"
)

func init() {
	register(command{name: "keygen", summary: "create the head librarian's age key (--out FILE); prints the public key", run: runKeygen})
}

// runKeygen writes a new age X25519 identity for the head librarian. It
// reads no config: the key is best made on the librarian's own machine,
// and only its public key (printed on stdout) goes into the config.
func runKeygen(ctx context.Context, e *env, args []string) error {
	flags := newFlagSet("keygen", e)
	out := flags.String("out", "", "write the secret key to `FILE` (must not exist)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if *out == "" || flags.NArg() > 0 {
		return usagef("keygen needs --out FILE and no other arguments")
	}
	recipient, err := seal.WriteIdentityFile(*out, time.Now())
	if errors.Is(err, fs.ErrExist) {
		return &hintError{err: err, hint: "carrel never overwrites a key: losing it makes sealed traffic unreadable; choose another FILE"}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, recipient)
	fmt.Fprintf(e.stderr, "wrote the secret key to %s (readable by you only).\n"+
		"Put the public key above in capture.recipients; keep %s off the public PCs, with a backup.\n", displayValue(*out), displayValue(*out))
	return nil
}
