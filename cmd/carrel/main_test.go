package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
)

// TestMain lets the test binary act as the carrel binary: testscript runs
// it under the name "carrel", and the end-to-end tests re-execute it with
// CARREL_TEST_MAIN=1, so every test drives the real command-line code
// without a separate build.
func TestMain(m *testing.M) {
	// A child that keyfiletest.KillAt kills while `config init` writes.
	keyfiletest.Child(func(out string) error {
		os.Args = []string{"carrel", "config", "init", "--pc-id", "pc-01", "--out", out}
		mainForTest()
		return nil
	})
	if os.Getenv("CARREL_TEST_MAIN") == "1" {
		mainForTest()
	}
	testscript.Main(m, map[string]func(){"carrel": mainForTest})
}

func mainForTest() {
	// CARREL_TEST_EXPORT_WAIT=STEP makes an export report each step on
	// standard error and wait at STEP until a signal stops it, so that a
	// test can interrupt the real binary at a step it chooses.
	if wait := os.Getenv("CARREL_TEST_EXPORT_WAIT"); wait != "" {
		exportStep = func(ctx context.Context, step string) {
			fmt.Fprintf(os.Stderr, "step %s\n", step)
			if step == wait {
				<-ctx.Done()
			}
		}
	}
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	ctx, stop := signalContext()
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
		},
	})
}

// cmdExitCode runs `exitcode N prog args...` and fails unless prog exits
// with status N: exit codes are part of carrel's interface.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d; want %d", args[1], got, want)
	}
}
