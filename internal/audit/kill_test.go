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
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir, os.Getenv(killRunEnv)))
	}
	os.Exit(m.Run())
}

// killChild appends entries to the log in dir and prints "ack SEQ ONCE"
// after each Record returned and "cp SIZE" after each checkpoint, until it
// is killed. It stops by itself after a while in case the parent died.
func killChild(dir, run string) int {
	ctx := context.Background()
	fmt.Println("start")
	l, err := Open(filepath.Join(dir, "audit.db"), Options{Origin: testOrigin, KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println("ready")
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		e := sampleEvent(i)
		e.Once = run + "-" + strconv.Itoa(i)
		seq, err := l.Record(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Printf("ack %d %s\n", seq, e.Once)
		if i%3 == 2 {
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 5
			}
			fmt.Printf("cp %d\n", cp.Size)
		}
	}
	return 0
}

// childOutput is what a killed child acknowledged.
type childOutput struct {
	ready bool
	acks  map[int64]string // seq → once
	cps   []int64
}

func readChild(r io.Reader) (childOutput, error) {
	out := childOutput{acks: map[int64]string{}}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return out, nil // EOF, possibly after half a line: the kill
		}
		f := strings.Fields(line)
		switch {
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

// TestKillLoop kills a writer at random moments, during Open (key creation,
// migration) and while appending and signing, and checks after each kill
// that SQLite is intact, the log verifies and every acknowledged entry and
// checkpoint is there. 200 kills in `make test`, 1000 in `make test-long`;
// a fresh log every 50 so that early-life crashes recur.
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
	ackTotal, inOpen := 0, 0
	for it := 0; it < iterations; it++ {
		if it%50 == 0 {
			dir, acked, cps = t.TempDir(), map[int64]string{}, nil
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killRunEnv+"="+strconv.Itoa(it))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Half the kills land anywhere from process start (often inside
		// Open), half while appending.
		delay := time.Duration(r.Int63n(int64(25 * time.Millisecond)))
		if it%2 == 1 {
			delay += 10 * time.Millisecond
		}
		timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
		out, rerr := readChild(stdout)
		werr := cmd.Wait()
		timer.Stop()
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
	t.Logf("%d entries acknowledged across %d kills; %d kills landed before Open returned", ackTotal, iterations, inOpen)
	if ackTotal < iterations {
		t.Errorf("only %d entries acknowledged in %d runs; the kills hit too early to test appending", ackTotal, iterations)
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
	if _, err := l.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatalf("kill %d: Verify = %v", it, err)
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
}
