// Package keyfiletest kills a process at a chosen step of writing a file
// with package keyfile, for crash tests of the packages that create keys
// and markers. The test binary runs itself as the child: its TestMain
// calls Child first.
//
// It is imported only by tests.
package keyfiletest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/keyfile"
)

// Steps are the steps keyfile reports, in order.
var Steps = []string{"temp", "written", "synced", "named", "done"}

const (
	envStep = "CARREL_KEYFILE_KILL_AT"
	envArg  = "CARREL_KEYFILE_KILL_ARG"
)

// hangGuard only stops a hung child; nothing waits for it to pass.
const hangGuard = 2 * time.Minute

// Child makes this process the child when the parent (KillAt) started it:
// it reports every step keyfile reaches as "step NAME" on standard output
// and, at the step the parent named, waits until it is killed. Outside a
// child it returns at once; in a child it never returns: it runs work on
// the parent's argument, prints "ok" or the error, and exits.
func Child(work func(arg string) error) {
	at := os.Getenv(envStep)
	if at == "" {
		return
	}
	out := bufio.NewWriter(os.Stdout)
	keyfile.StepHook = func(step string) {
		fmt.Fprintf(out, "step %s\n", step)
		out.Flush()
		if step == at {
			io.Copy(io.Discard, os.Stdin) // ends only when the parent died
			os.Exit(7)
		}
	}
	if err := work(os.Getenv(envArg)); err != nil {
		fmt.Fprintf(out, "error %v\n", err)
		out.Flush()
		os.Exit(3)
	}
	fmt.Fprintln(out, "ok")
	out.Flush()
	os.Exit(0)
}

// KillAt runs the test binary as a child that does its work on arg and
// kills it with SIGKILL as soon as it reports step. It returns the steps
// the child reported. It fails t if the child never reached step.
func KillAt(t *testing.T, step, arg string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envStep+"="+step, envArg+"="+arg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(hangGuard, func() { cmd.Process.Kill() })
	defer guard.Stop()
	var steps []string
	var other []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		name, ok := strings.CutPrefix(line, "step ")
		if !ok {
			other = append(other, line)
			continue
		}
		steps = append(steps, name)
		if name == step {
			cmd.Process.Kill()
		}
	}
	cmd.Wait()
	if len(steps) == 0 || steps[len(steps)-1] != step {
		t.Fatalf("child killed at %q reported steps %v, then %q; stderr: %s", step, steps, other, stderr.String())
	}
	return steps
}
