package audit

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// The kill test re-executes this test binary as a writer: with
// killChildEnv set, TestMain runs killChild instead of the tests.
const (
	killChildEnv = "CARREL_AUDIT_KILL_CHILD"
	killRunEnv   = "CARREL_AUDIT_KILL_RUN"
	killBlockEnv = "CARREL_AUDIT_KILL_BLOCK" // a step of Open the child waits at until it is killed
)

// openSteps are the steps of opening a writable log that Open reports
// through testHookOpen, in order: before SQLite creates and migrates the
// file, before the signing key is read or created, before the transaction
// that records a new key (and signs a new log's first checkpoint), and
// inside that transaction just before it commits.
var openSteps = []string{"migrate", "key", "init", "commit"}

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir, os.Getenv(killRunEnv), os.Getenv(killBlockEnv)))
	}
	os.Exit(m.Run())
}

// killChild reports "open STEP" at each step of Open (and, at the step
// block names, waits for its standard input, which only the kill ends),
// "ready" when Open returned, then appends entries to the log in dir and
// prints "ack SEQ ONCE" after each Record returned and "cp SIZE" after each
// checkpoint, until it is killed. It stops by itself after a while in case
// the parent died.
func killChild(dir, run, block string) int {
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, a ...any) {
		fmt.Fprintf(out, format+"\n", a...)
		out.Flush()
	}
	testHookOpen = func(step string) {
		say("open %s", step)
		if step == block {
			io.Copy(io.Discard, os.Stdin) // returns only if the parent died
			os.Exit(6)
		}
	}
	l, err := Open(filepath.Join(dir, "audit.db"), Options{Origin: testOrigin, KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	say("ready")
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		e := sampleEvent(i)
		e.Once = run + "-" + strconv.Itoa(i)
		seq, err := l.Record(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		say("ack %d %s", seq, e.Once)
		if i%3 == 2 {
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 5
			}
			say("cp %d", cp.Size)
		}
	}
	return 0
}

// childOutput is what a killed child reported.
type childOutput struct {
	steps []string // the steps of Open reached
	ready bool
	acks  map[int64]string // seq → once
	cps   []int64
}

// readChild reads the child's reports until until says to stop (then it
// calls kill and reads the rest) or the output ends.
func readChild(r io.Reader, until func(childOutput) bool, kill func()) (childOutput, error) {
	out := childOutput{acks: map[int64]string{}}
	br := bufio.NewReader(r)
	killed := false
	for {
		if !killed && until(out) {
			kill()
			killed = true
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return out, nil // EOF, possibly after half a line: the kill
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "open":
			out.steps = append(out.steps, f[1])
		case len(f) == 1 && f[0] == "ready":
			out.ready = true
		case len(f) == 3 && f[0] == "ack":
			seq, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return out, err
			}
			out.acks[seq] = f[2]
		case len(f) == 2 && f[0] == "cp":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return out, err
			}
			out.cps = append(out.cps, n)
		}
	}
}

// TestKillLoop kills a writer with SIGKILL, relative to what it reported,
// during Open (migration, key creation, the first checkpoint) and while
// appending and signing, and checks after each kill that SQLite is intact,
// every acknowledged entry and checkpoint is there, the log verifies but
// for entries the kill left unsigned, and the next writer signs those.
// 200 kills in `make test`, 1000 in `make test-long`; a fresh log every 50
// so that early-life crashes recur.
//
// A quarter of the kills are aimed at Open: the parent kills when the
// child reports a step of Open, and for half of those the child waits at
// that step, so those kills land inside Open however loaded the machine.
// The rest kill after the child acknowledged 1 to 8 entries.
func TestKillLoop(t *testing.T) {
	iterations := 200
	if testenv.Long() {
		iterations = 1000
	}
	seed := time.Now().UnixNano()
	t.Logf("%d kills, seed %d", iterations, seed)
	r := rand.New(rand.NewSource(seed))
	var dir string
	var acked map[int64]string
	var cps []int64
	ackTotal, inOpen, blocked, appending := 0, 0, 0, 0
	for it := 0; it < iterations; it++ {
		if it%50 == 0 {
			dir, acked, cps = t.TempDir(), map[int64]string{}, nil
		}
		var until func(childOutput) bool
		block := ""
		if it%4 == 0 {
			step := openSteps[r.Intn(len(openSteps))]
			if it%8 == 0 {
				block = step
				blocked++
			}
			until = func(o childOutput) bool { return slices.Contains(o.steps, step) || o.ready }
		} else {
			want := 1 + r.Intn(8)
			appending++
			until = func(o childOutput) bool { return len(o.acks) >= want }
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killRunEnv+"="+strconv.Itoa(it), killBlockEnv+"="+block)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out, rerr := readChild(stdout, until, func() { cmd.Process.Kill() })
		werr := cmd.Wait()
		stdin.Close()
		if rerr != nil {
			t.Fatalf("kill %d: reading the writer: %v", it, rerr)
		}
		var exit *exec.ExitError
		if !errors.As(werr, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("kill %d: writer ended by itself (%v) instead of being killed:\n%s", it, werr, stderr.Bytes())
		}
		for seq, once := range out.acks {
			acked[seq] = once
		}
		ackTotal += len(out.acks)
		if !out.ready {
			inOpen++
		}
		cps = append(cps, out.cps...)
		checkAfterKill(t, it, dir, acked, cps)
	}
	t.Logf("%d entries acknowledged across %d kills; %d kills landed before Open returned (%d made to wait inside it)",
		ackTotal, iterations, inOpen, blocked)
	if inOpen < blocked {
		t.Errorf("%d kills landed inside Open; the %d that waited there all must have", inOpen, blocked)
	}
	if ackTotal < appending {
		t.Errorf("only %d entries acknowledged in %d kills aimed at appending; each waited for at least one", ackTotal, appending)
	}
}

func checkAfterKill(t *testing.T, it int, dir string, acked map[int64]string, cps []int64) {
	t.Helper()
	path := filepath.Join(dir, "audit.db")
	if _, err := os.Stat(path); err != nil && len(acked) == 0 {
		return // killed before the first Open created the file
	}
	// Read-write, as the next writer would open it: a kill inside the very
	// first transaction (before WAL mode is set) leaves a hot rollback
	// journal that only a writer may roll back.
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("kill %d: integrity_check = %q, %v", it, integrity, err)
	}
	l, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		if len(acked) == 0 {
			return // killed inside the first Open: the next writer finishes it
		}
		t.Fatalf("kill %d: %v", it, err)
	}
	defer l.Close()
	// A kill between an entry and the checkpoint after it leaves entries
	// no checkpoint covers: Verify says so, and says nothing else.
	_, verr := l.Verify(context.Background(), VerifyOptions{})
	if verr != nil && !errors.Is(verr, ErrUnsigned) {
		t.Fatalf("kill %d: Verify = %v", it, verr)
	}
	stored := map[int64]string{}
	rows, err := db.Query(`SELECT seq, once FROM entries WHERE once IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq int64
		var once string
		rows.Scan(&seq, &once)
		stored[seq] = once
	}
	rows.Close()
	for seq, once := range acked {
		if stored[seq] != once {
			t.Fatalf("kill %d: acknowledged entry %d (%s) is stored as %q", it, seq, once, stored[seq])
		}
	}
	for _, size := range cps {
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM checkpoints WHERE size = ?`, size).Scan(&n)
		if n != 1 {
			t.Fatalf("kill %d: acknowledged checkpoint of size %d stored %d times", it, size, n)
		}
	}
	if verr == nil {
		return
	}
	// The next writer (the service starting again) signs what the kill
	// left unsigned, and then the whole log verifies.
	w, err := Open(path, Options{Origin: testOrigin, KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatalf("kill %d: opening the log again: %v", it, err)
	}
	if _, _, err := w.CheckpointIfGrown(context.Background()); err != nil {
		t.Fatalf("kill %d: signing after the kill: %v", it, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("kill %d: Verify after the next writer signed = %v", it, err)
	}
}
