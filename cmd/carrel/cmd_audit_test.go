package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// runCLI runs one carrel command line in-process and returns its exit code
// and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

// auditFixture writes a config whose data folder holds a live audit log,
// as the service would leave it, and returns the config path, the data
// folder and the (still open) log.
func auditFixture(t *testing.T) (string, string, *audit.Log) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "carrel.toml")
	if err := os.WriteFile(cfg, []byte("version = 1\n[pc]\nid = \"pc-e2e\"\n[storage]\ndata_dir = '"+data+"'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.OpenIn(data, "carrel/pc-e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	sum := bytes.Repeat([]byte{0xab}, 32)
	for _, ev := range []audit.Event{
		{Kind: audit.ServiceStart, Actor: "service", Fields: []audit.Field{audit.Token("version", "1.0.0"), audit.Hash("config_sha256", sum)}},
		{Kind: audit.ConfigRejected, Actor: "service", Fields: []audit.Field{audit.Hash("sha256", sum), audit.Text("problems", "pc.id: empty\nversion: missing"), audit.Int("count", 2)}},
		{Kind: audit.CaptureStart, Actor: "service", Fields: []audit.Field{audit.Token("case", "2026-03"), audit.Token("mode", "metadata")}},
		{Kind: audit.CaptureStop, Actor: "service", Fields: []audit.Field{audit.Token("case", "2026-03"), audit.Token("why", "case-ended")}},
		{Kind: audit.ServiceStop, Actor: "service", Fields: []audit.Field{audit.Token("reason", "signal")}},
	} {
		if _, err := l.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return cfg, data, l
}

func TestAuditCommands(t *testing.T) {
	ctx := context.Background()
	cfg, data, l := auditFixture(t)

	code, out, errOut := runCLI(t, "", "audit", "key", "--config", cfg)
	if code != 0 || out != l.Verifier()+"\n" {
		t.Fatalf("audit key = %d, %q, %q; want 0 and %q", code, out, errOut, l.Verifier())
	}
	key := strings.TrimSpace(out)

	code, out, _ = runCLI(t, "", "audit", "checkpoint", "--config", cfg)
	latest, _ := l.Latest(ctx)
	if code != 0 || out != string(latest.Note) {
		t.Fatalf("audit checkpoint = %d, %q; want the latest note %q", code, out, latest.Note)
	}
	trusted := filepath.Join(t.TempDir(), "checkpoint.txt")
	os.WriteFile(trusted, []byte(out), 0o644)

	code, out, _ = runCLI(t, "", "audit", "list", "--config", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 7 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(out, `problems="pc.id: empty\nversion: missing"`) {
		t.Errorf("audit list = %d,\n%s\nwant a header, 6 entries and the problems quoted on one line", code, out)
	}

	code, out, _ = runCLI(t, "", "audit", "list", "--config", cfg, "--json", "--kind", "capture.start,capture.stop", "--field", "case=2026-03")
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ent struct {
			Seq    int64
			Kind   string
			Fields map[string]string
		}
		if err := json.Unmarshal([]byte(line), &ent); err != nil {
			t.Fatalf("audit list --json line %q: %v", line, err)
		}
		if ent.Fields["case"] != "2026-03" {
			t.Errorf("audit list --field case=2026-03 printed %q", line)
		}
		kinds = append(kinds, ent.Kind)
	}
	if code != 0 || strings.Join(kinds, " ") != "capture.start capture.stop" {
		t.Errorf("audit list --json --kind capture.start,capture.stop = %d, kinds %v", code, kinds)
	}

	code, out, _ = runCLI(t, "", "audit", "list", "--config", cfg, "--since", "1h", "--kind", "service.stop")
	if code != 0 || strings.Count(out, "service.stop") != 1 {
		t.Errorf("audit list --since 1h --kind service.stop = %d,\n%s", code, out)
	}

	code, out, _ = runCLI(t, "", "audit", "verify", "--config", cfg)
	if code != 0 || !strings.HasPrefix(out, "audit log intact: 6 entries, 2 checkpoints (latest covers 6)") ||
		!strings.Contains(out, "\nnot compared with a checkpoint kept off the PC:") {
		t.Errorf("audit verify = %d, %q; want 0, the summary and what it cannot prove", code, out)
	}

	// The service goes on; the copy kept off the PC still verifies.
	if _, err := l.Record(ctx, audit.Event{Kind: audit.ServiceStart, Actor: "service", Fields: []audit.Field{audit.Token("version", "1.0.1")}}); err != nil {
		t.Fatal(err)
	}
	l.Checkpoint(ctx)
	code, out, errOut = runCLI(t, "", "audit", "verify", "--config", cfg, "--trusted", trusted, "--verifier", key)
	if code != 0 || !strings.Contains(out, "extends the trusted checkpoint of size 6") {
		t.Errorf("audit verify --trusted --verifier = %d, %q, %q", code, out, errOut)
	}
	crlf := strings.ReplaceAll(string(latest.Note), "\n", "\r\n")
	code, out, errOut = runCLI(t, crlf, "audit", "verify", "--config", cfg, "--trusted", "-")
	if code != 0 {
		t.Errorf("audit verify --trusted - (CRLF copy) = %d, %q, %q", code, out, errOut)
	}

	proofs := t.TempDir()
	code, out, errOut = runCLI(t, "", "audit", "prove", "--config", cfg, "--seq", "2", "--dir", proofs)
	if code != 0 {
		t.Fatalf("audit prove = %d, %q", code, errOut)
	}
	entry, _ := os.ReadFile(filepath.Join(proofs, "entry-2.txt"))
	proof, _ := os.ReadFile(filepath.Join(proofs, "entry-2.proof"))
	note, _ := os.ReadFile(filepath.Join(proofs, "checkpoint.txt"))
	if string(proof) != out {
		t.Errorf("audit prove printed %q; want the proof file %q", out, proof)
	}
	if err := audit.VerifyInclusion(entry, proof, note, key); err != nil {
		t.Errorf("VerifyInclusion(files from audit prove --dir) = %v", err)
	}

	usage := [][]string{
		{"audit"},
		{"audit", "nope"},
		{"audit", "list", "--config", cfg, "--kind", "capture.begin"},
		{"audit", "list", "--config", cfg, "--since", "yesterday"},
		{"audit", "list", "--config", cfg, "--field", "case"},
		{"audit", "prove", "--config", cfg},
	}
	for _, args := range usage {
		if code, _, errOut := runCLI(t, "", args...); code != 2 {
			t.Errorf("carrel %s = %d (%s); want 2", strings.Join(args, " "), code, errOut)
		}
	}
	code, _, errOut = runCLI(t, "", "audit", "prove", "--config", cfg, "--seq", "99")
	if code != 1 || !strings.Contains(errOut, "entry 99") {
		t.Errorf("audit prove --seq 99 = %d, %q; want 1 naming entry 99", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "audit", "verify", "--db", filepath.Join(data, "nope.db"))
	if code != 1 || !strings.Contains(errOut, "hint: the service creates") {
		t.Errorf("audit verify --db missing = %d, %q; want 1 with a hint", code, errOut)
	}
}

func TestAuditVerifyTampered(t *testing.T) {
	sqlite := testenv.NeedTool(t, "sqlite3")
	cfg, data, l := auditFixture(t)
	_, foreign, _ := auditFixture(t)
	otherKey, err := audit.ReadVerifierKey(filepath.Join(foreign, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "audit", "verify", "--config", cfg, "--verifier", otherKey)
	if code != 1 || !strings.Contains(errOut, "checkpoint 1 (size 1):") {
		t.Errorf("audit verify --verifier (another PC's key) = %d, %q, %q; want 1 naming checkpoint 1", code, out, errOut)
	}
	l.Close()
	script := `UPDATE fields SET value = 'capture-off' WHERE seq = 3 AND key = 'case'`
	if b, err := exec.Command(sqlite, filepath.Join(data, "audit.db"), script).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, b)
	}
	code, out, errOut = runCLI(t, "", "audit", "verify", "--config", cfg)
	if code != 1 || out != "" || !strings.Contains(errOut, "audit log does not verify: entry 3:") || !strings.Contains(errOut, "hint:") {
		t.Errorf("audit verify after sqlite3 changed entry 3 = %d, %q, %q; want 1 naming entry 3", code, out, errOut)
	}
}

// TestAuditVerifyUnsigned: entries no signed checkpoint covers make verify
// fail (issue 10, item 3), except that on the live log, when they were
// recorded moments ago, verify first waits for the running service to sign
// them.
func TestAuditVerifyUnsigned(t *testing.T) {
	ctx := context.Background()
	cfg, data, l := auditFixture(t)
	db := filepath.Join(data, audit.DBFile)
	stop := audit.Event{Kind: audit.ServiceStop, Actor: "service", Fields: []audit.Field{audit.Token("reason", "signal")}}
	for range 3 {
		if _, err := l.Record(ctx, stop); err != nil {
			t.Fatal(err)
		}
	}
	// A copy taken off the PC is judged as it is: no waiting.
	code, out, errOut := runCLI(t, "", "audit", "verify", "--db", db)
	if code != 1 || out != "" || !strings.Contains(errOut, "audit log does not verify: entries 6–8: covered by no signed checkpoint (the latest signed checkpoint covers entries 0–5)") ||
		!strings.Contains(errOut, "Only a checkpoint kept off the PC (--trusted FILE) or a witness can prove the log's end") {
		t.Errorf("audit verify --db with 3 unsigned entries = %d, %q, %q; want 1 naming entries 6–8", code, out, errOut)
	}

	// The live log: verify waits, and passes once the service signs.
	var stdout, stderr testenv.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"audit", "verify", "--config", cfg}) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "waiting up to") {
		select {
		case code := <-done:
			t.Fatalf("audit verify of a live log with fresh unsigned entries = %d, %q, %q; want it to wait for the service", code, stdout.String(), stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("audit verify never said it was waiting")
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil { // what the service does within seconds
		t.Fatal(err)
	}
	if code := <-done; code != 0 || !strings.HasPrefix(stdout.String(), "audit log intact: 9 entries, 3 checkpoints (latest covers 9)") {
		t.Errorf("audit verify after the service signed = %d, %q, %q", code, stdout.String(), stderr.String())
	}
}

// TestAuditVerifyUnsignedAfterCrash: entries left unsigned long ago (a
// service that was killed) fail at once; there is no one to wait for.
func TestAuditVerifyUnsignedAfterCrash(t *testing.T) {
	cfg, data, l := auditFixture(t)
	l.Close()
	past := func() time.Time { return time.Now().Add(-time.Hour) }
	old, err := audit.OpenIn(data, "carrel/pc-e2e", past)
	if err != nil {
		t.Fatal(err)
	}
	// Closing would sign; a killed service never does. Record through a
	// second handle and leave it open until the test ends.
	t.Cleanup(func() { old.Close() })
	if _, err := old.Record(context.Background(), audit.Event{Kind: audit.ServiceStart, Actor: "service",
		Fields: []audit.Field{audit.Token("version", "1.0.0")}}); err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	code, out, errOut := runCLI(t, "", "audit", "verify", "--config", cfg)
	if code != 1 || out != "" || strings.Contains(errOut, "waiting") || !strings.Contains(errOut, "entry 6: covered by no signed checkpoint") {
		t.Errorf("audit verify with an hour-old unsigned entry = %d, %q, %q; want 1 at once naming entry 6", code, out, errOut)
	}
	t.Logf("verify failed after %s", time.Since(begun).Round(time.Millisecond))
}

// TestAuditVerifyCheckpointsDeleted: the checkpoints table emptied with
// sqlite3 (issue 10, item 3) is caught by what the entries recorded.
func TestAuditVerifyCheckpointsDeleted(t *testing.T) {
	sqlite := testenv.NeedTool(t, "sqlite3")
	cfg, data, l := auditFixture(t)
	l.Close()
	if b, err := exec.Command(sqlite, filepath.Join(data, "audit.db"), `DELETE FROM checkpoints`).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, b)
	}
	code, out, errOut := runCLI(t, "", "audit", "verify", "--config", cfg)
	if code != 1 || out != "" || !strings.Contains(errOut, "audit log does not verify: checkpoint of size 1: missing: entry 1 records that it was signed") {
		t.Errorf("audit verify after the checkpoints were deleted = %d, %q, %q; want 1", code, out, errOut)
	}
}
