package main

import (
	"context"
	"fmt"
	"runtime"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func init() {
	register(command{name: "version", summary: "print carrel's version", run: runVersion})
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("version", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "carrel %s %s/%s %s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
}
