package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/testenv"
	"github.com/carrel-lib/carrel/internal/witness/witnesstest"
)

// The test binary, run as carrel, waits CARREL_TEST_WITNESS_BACKOFF
// between pushes to a witness that failed, instead of carrel's backoff
// (5 s doubling): the tests inject the timing, they do not sleep.
func init() {
	if d, err := time.ParseDuration(os.Getenv("CARREL_TEST_WITNESS_BACKOFF")); err == nil {
		witnessBackoff = func(int) time.Duration { return d }
	}
}

const witnessOriginPrefix = "bib.example.dk/carrel"

// witnessPC is a `carrel run` whose config names one witness.
type witnessPC struct {
	t       *testing.T // the running (sub)test
	root    *testing.T // the test the service's life is bound to
	w       *witnesstest.Witness
	cfgPath string
	dataDir string
	base    string // the config file as written
	svc     *service
	client  *api.Client
	edits   int
}

func newWitnessPC(t *testing.T) *witnessPC {
	t.Helper()
	w := witnesstest.Start(t, witnesstest.Options{Name: "witness.test/w1"})
	dir, cfgPath := demo(t, func(s string) string {
		s = strings.Replace(s, `client_group = "carrel-booking"`, `client_group = ""`, 1)
		s = strings.Replace(s, `origin_prefix = "carrel"`, `origin_prefix = "`+witnessOriginPrefix+`"`, 1)
		return strings.Replace(s, "witnesses = []", fmt.Sprintf("witnesses = [{name = \"w1\", url = %q, key = %q}]", w.URL, w.Key), 1)
	})
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &witnessPC{t: t, root: t, w: w, cfgPath: cfgPath, dataDir: filepath.Join(dir, "data"), base: string(b),
		client: api.NewClient(filepath.Join(dir, "data", "api.sock"))}
	return p
}

// start starts the service; it lives until stopped or the whole test
// ends, not the subtest that started it.
func (p *witnessPC) start() {
	p.t.Helper()
	cmd := carrelCmd(p.t, "run", "--config", p.cfgPath)
	cmd.Env = append(cmd.Env, "CARREL_TEST_WITNESS_BACKOFF=50ms")
	p.svc = launch(p.root, cmd, p.cfgPath)
}

// register tells the witness about this PC's log, as the README says: the
// origin from `carrel status`, the key from `carrel audit key`.
func (p *witnessPC) register() string {
	p.t.Helper()
	key, code := carrelRun(p.t, "audit", "key", "--config", p.cfgPath)
	if code != 0 {
		p.t.Fatalf("audit key: %d %s", code, key)
	}
	key = strings.TrimSpace(key)
	origin, _, _ := strings.Cut(key, "+")
	if want := witnessOriginPrefix + "/pc-e2e"; origin != want {
		p.t.Fatalf("the log's key is named %q; want the origin %q", origin, want)
	}
	p.w.AddLog(origin, key)
	return origin
}

// touch changes the config file (a comment), which the service takes up
// as a reload: a config.accepted entry, then a checkpoint within seconds.
func (p *witnessPC) touch() {
	p.t.Helper()
	p.edits++
	if err := os.WriteFile(p.cfgPath, []byte(p.base+fmt.Sprintf("# edit %d\n", p.edits)), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// status waits until cond holds of the service's status and returns it;
// the deadline only stops a hang.
func (p *witnessPC) status(what string, cond func(api.Status) bool) api.Status {
	p.t.Helper()
	deadline := time.Now().Add(hangDeadline)
	var st api.Status
	var err error
	for time.Now().Before(deadline) {
		st, err = p.client.Status(context.Background())
		if err == nil && cond(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("waiting for %s: not after %s; last status %+v (%v)\n%s", what, hangDeadline, st.Audit, err, p.svc.log)
	return st
}

func witnessRow(st api.Status) api.WitnessStatus {
	for _, w := range st.Audit.Witnesses {
		if w.Name == "w1" {
			return w
		}
	}
	return api.WitnessStatus{}
}

// cosignedAll: the witness cosigned the latest checkpoint, and no entry is
// left uncovered.
func cosignedAll(st api.Status) bool {
	w := witnessRow(st)
	return st.Audit.Checkpointed == st.Audit.Entries && w.Cosigned == st.Audit.Checkpointed && w.Error == "" &&
		st.Audit.Witnessed == st.Audit.Checkpointed
}

// cli runs a carrel command with the PC's config; args take no
// positional arguments (the flag comes last).
func (p *witnessPC) cli(args ...string) (string, int) {
	return carrelRun(p.t, append(args, "--config", p.cfgPath)...)
}

// TestWitnessEndToEnd runs the real service with a real litewitness on
// loopback through a PC's life: registered at the witness, its checkpoints
// are cosigned and verify; with the witness down, bookings go on and the
// checkpoints are cosigned once it is back; a stored cosignature altered is
// caught by `carrel audit verify`; a log rewritten and signed again with
// the PC's own key, and a wiped data folder, are refused by the witness,
// recorded, logged and shown in `carrel status` until acknowledged.
func TestWitnessEndToEnd(t *testing.T) {
	testenv.NeedTool(t, "sqlite3")
	p := newWitnessPC(t)
	p.start()

	// Before registration the witness does not know the log: an error to
	// fix, with the origin to register, not a refusal.
	st := p.status("the unregistered witness's error", func(st api.Status) bool {
		return strings.Contains(witnessRow(st).Error, "does not know this log")
	})
	if st.Audit.Origin != witnessOriginPrefix+"/pc-e2e" || witnessRow(st).Refusal != nil {
		t.Fatalf("status: origin %q, witness %+v", st.Audit.Origin, witnessRow(st))
	}
	origin := p.register()
	st = p.status("the witness to cosign the log", cosignedAll)
	out, code := p.cli("status")
	if code != 0 || !strings.Contains(out, "witness w1:") || !strings.Contains(out, fmt.Sprintf("cosigned size %d", st.Audit.Checkpointed)) ||
		!strings.Contains(out, "witnessed:") {
		t.Errorf("carrel status (%d):\n%s", code, out)
	}

	t.Run("Verify", func(t *testing.T) {
		p.t = t
		out, code := p.cli("audit", "verify", "--witness-key", p.w.Key)
		if code != 0 || !strings.Contains(out, "witnessed up to") || !strings.Contains(out, "given with --witness-key") {
			t.Fatalf("audit verify --witness-key (%d):\n%s", code, out)
		}
		cosigned, code := p.cli("audit", "checkpoint", "--cosigned")
		if code != 0 || !strings.Contains(cosigned, "— witness.test/w1 ") || !strings.HasPrefix(cosigned, origin+"\n") {
			t.Fatalf("audit checkpoint --cosigned (%d):\n%s", code, cosigned)
		}
		file := filepath.Join(t.TempDir(), "cosigned.txt")
		os.WriteFile(file, []byte(cosigned), 0o644)
		out, code = p.cli("audit", "verify", "--trusted", file, "--witness-key", p.w.Key)
		if code != 0 || !strings.Contains(out, "extends the trusted checkpoint") || !strings.Contains(out, "(cosigned by witness.test/w1)") {
			t.Fatalf("audit verify --trusted cosigned (%d):\n%s", code, out)
		}
	})

	t.Run("WitnessDown", func(t *testing.T) {
		p.t = t
		p.w.Stop()
		before := p.status("the status", func(api.Status) bool { return true })
		p.touch()
		st := p.status("a failed push while the witness is down", func(st api.Status) bool {
			return st.Audit.Checkpointed > before.Audit.Checkpointed && strings.Contains(witnessRow(st).Error, "unreachable")
		})
		// Bookings are unaffected: each is answered at once.
		for i := range 5 {
			start := time.Now()
			if out, code := p.cli("booking", "start", "--ref", fmt.Sprintf("down-%d", i)); code != 0 {
				t.Fatalf("booking start while the witness is down: %d %s", code, out)
			}
			if out, code := p.cli("booking", "end", "--ref", fmt.Sprintf("down-%d", i)); code != 0 {
				t.Fatalf("booking end while the witness is down: %d %s", code, out)
			}
			t.Logf("booking %d start+end took %s with the witness down", i, time.Since(start).Round(time.Millisecond))
		}
		out, _ := p.cli("status")
		if !strings.Contains(out, "failing since") || !strings.Contains(out, "unreachable") {
			t.Errorf("carrel status with the witness down:\n%s", out)
		}
		p.w.Restart()
		after := p.status("the checkpoint cosigned once the witness is back", cosignedAll)
		if after.Audit.Checkpointed < st.Audit.Checkpointed || after.Bookings.Count < 5 {
			t.Errorf("after recovery: %+v, %d bookings", after.Audit, after.Bookings.Count)
		}
	})

	t.Run("AlteredCosignature", func(t *testing.T) {
		p.t = t
		copyDB := filepath.Join(t.TempDir(), "audit.db")
		sqliteRun(t, filepath.Join(p.dataDir, "audit.db"), `VACUUM INTO '`+copyDB+`'`)
		if out, code := carrelRun(t, "audit", "verify", "--db", copyDB, "--witness-key", p.w.Key); code != 0 {
			t.Fatalf("audit verify of the copy before the change (%d):\n%s", code, out)
		}
		// One base64 character of the latest cosignature changed.
		sqliteRun(t, copyDB, `UPDATE cosignatures SET line = substr(line, 1, length(line) - 6) ||
			CASE WHEN substr(line, -6, 1) = 'A' THEN 'B' ELSE 'A' END || substr(line, -5)
			WHERE checkpoint = (SELECT MAX(checkpoint) FROM cosignatures)`)
		out, code := carrelRun(t, "audit", "verify", "--db", copyDB, "--witness-key", p.w.Key)
		if code == 0 || !strings.Contains(out, "cosignature by witness.test/w1") || !strings.Contains(out, "does not verify") {
			t.Fatalf("audit verify of an altered cosignature (%d):\n%s", code, out)
		}
	})

	t.Run("Rewritten", func(t *testing.T) {
		p.t = t
		p.svc.stop(t)
		size := p.w.TreeSize(origin)
		rewrite(t, p.dataDir, origin)
		p.start()
		st := p.status("the witness's refusal of the rewritten log", func(st api.Status) bool {
			r := witnessRow(st).Refusal
			return r != nil && r.AcknowledgedAt == nil
		})
		r := witnessRow(st).Refusal
		if r.Why != audit.RefusedNotExtension || strconv.FormatInt(r.WitnessSize, 10) != size {
			t.Errorf("refusal = %+v; want not-extension at the witness's size %s", r, size)
		}
		p.assertRefusalShown(r, audit.RefusedNotExtension)
		p.ack()
	})

	t.Run("Wiped", func(t *testing.T) {
		p.t = t
		p.svc.stop(t)
		if err := os.RemoveAll(p.dataDir); err != nil {
			t.Fatal(err)
		}
		p.start()
		st := p.status("the witness's refusal of the new log", func(st api.Status) bool {
			r := witnessRow(st).Refusal
			return r != nil && r.AcknowledgedAt == nil
		})
		if st.Audit.Origin != origin {
			t.Errorf("the new log's origin is %q; want the same %q (so that the witness catches the wipe)", st.Audit.Origin, origin)
		}
		r := witnessRow(st).Refusal
		if r.Why != audit.RefusedKeyNotTrusted {
			t.Errorf("refusal = %+v; want key-not-trusted", r)
		}
		p.assertRefusalShown(r, audit.RefusedKeyNotTrusted)
		p.ack()
	})
}

// assertRefusalShown checks the three places a refusal must be loud: the
// audit log, the service log and `carrel status`.
func (p *witnessPC) assertRefusalShown(r *api.WitnessRefusal, why string) {
	t := p.t
	t.Helper()
	out, code := p.cli("audit", "list", "--kind", "witness.refused")
	if code != 0 || !strings.Contains(out, "why="+why) || !strings.Contains(out, "witness=w1") {
		t.Errorf("audit list --kind witness.refused (%d):\n%s", code, out)
	}
	if !p.svc.waitLog(t, "witness refused the audit log") {
		t.Errorf("the service log does not say the witness refused the log")
	}
	out, _ = p.cli("status")
	if !strings.Contains(out, "REFUSED THE AUDIT LOG") || !strings.Contains(out, "carrel audit witness ack w1") {
		t.Errorf("carrel status does not show the refusal:\n%s", out)
	}
}

// ack acknowledges the refusal, and shows that the acknowledgement is
// audited and that status stops raising the alarm.
func (p *witnessPC) ack() {
	t := p.t
	t.Helper()
	out, code := carrelRun(t, "audit", "witness", "ack", "--config", p.cfgPath, "w1")
	if code != 0 || !strings.Contains(out, "acknowledged the refusal") {
		t.Fatalf("audit witness ack (%d):\n%s", code, out)
	}
	if out, code := carrelRun(t, "audit", "witness", "ack", "--config", p.cfgPath, "w1"); code == 0 {
		t.Errorf("a second ack succeeded:\n%s", out)
	}
	p.status("the acknowledgement in the status", func(st api.Status) bool {
		r := witnessRow(st).Refusal
		return r != nil && r.AcknowledgedAt != nil
	})
	out, _ = p.cli("status")
	if strings.Contains(out, "REFUSED THE AUDIT LOG") {
		t.Errorf("status still raises the alarm after the acknowledgement:\n%s", out)
	}
	out, code = p.cli("audit", "list", "--kind", "witness.acknowledged")
	if code != 0 || !strings.Contains(out, "witness=w1") {
		t.Errorf("audit list --kind witness.acknowledged (%d):\n%s", code, out)
	}
}

// rewrite replaces the data folder's audit log by another history signed
// with the same key (audit.key), keeping carrel's witness state, as someone
// with administrator rights on the PC could.
func rewrite(t *testing.T, dataDir, origin string) {
	t.Helper()
	forged := t.TempDir()
	key, err := os.ReadFile(filepath.Join(dataDir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(forged, audit.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(forged, audit.DBFile), audit.Options{Origin: origin, KeyPath: filepath.Join(forged, audit.KeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := l.Record(context.Background(), audit.Event{Kind: audit.ServiceStop, Actor: "service",
			Fields: []audit.Field{audit.Token("reason", "rewritten-"+strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sqliteRun(t, filepath.Join(forged, audit.DBFile), `ATTACH '`+filepath.Join(dataDir, audit.DBFile)+`' AS genuine;
		INSERT INTO witnesses SELECT * FROM genuine.witnesses;`)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dataDir, audit.DBFile+suffix))
	}
	b, err := os.ReadFile(filepath.Join(forged, audit.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, audit.DBFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func sqliteRun(t *testing.T, db, script string) {
	t.Helper()
	bin := testenv.NeedTool(t, "sqlite3")
	if out, err := exec.Command(bin, db, script).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", script, err, out)
	}
}

// TestWitnessDownCaptureGoesOn runs the service in a network namespace
// with capture under a case and its witness beside it: while the witness
// is down, capture goes on counting packets and bookings are taken, the
// log is signed without waiting, and the status shows the failure; once
// the witness is back, the checkpoints are cosigned.
func TestWitnessDownCaptureGoesOn(t *testing.T) {
	t.Setenv("CARREL_TEST_WITNESS_BACKOFF", "50ms")
	l := newPCLab(t)
	w := witnesstest.Start(t, witnesstest.Options{
		Wrap: func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"ip", "netns", "exec", l.lab.PC}, cmd.Args...)
			cmd.Path, _ = exec.LookPath("ip")
		},
		Probe: func(addr string) bool {
			ok := false
			l.lab.Do(l.lab.PC, func() {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					ok = true
				}
			})
			return ok
		}})
	key, code := carrelRun(t, "audit", "key", "--config", l.cfgPath)
	if code != 0 {
		t.Fatalf("audit key: %d %s", code, key)
	}
	key = strings.TrimSpace(key)
	origin, _, _ := strings.Cut(key, "+")
	w.AddLog(origin, key)
	l.base = strings.Replace(l.base, "witnesses = []", fmt.Sprintf("witnesses = [{name = \"w1\", url = %q, key = %q}]", w.URL, w.Key), 1)
	now := time.Now()
	caseTOML := tcase{id: "2026-witness", start: now.Add(-time.Minute), end: now.Add(time.Hour)}.toml()
	l.writeConfig(t, caseTOML)
	waitUntil(t, "capture on and the log cosigned", func() bool {
		st := l.status(t)
		return st.Mode == "capturing" && cosignedAll(st)
	})

	w.Stop()
	l.writeConfig(t, caseTOML+"# the witness is down\n")
	before := l.status(t)
	took := waitUntil(t, "a checkpoint signed and a failed push while the witness is down", func() bool {
		st := l.status(t)
		return st.Audit.Checkpointed > before.Audit.Checkpointed && st.Audit.Checkpointed == st.Audit.Entries &&
			strings.Contains(witnessRow(st).Error, "unreachable")
	})
	t.Logf("checkpoint signed and the failure shown %s after the config change", took.Round(time.Millisecond))
	last := l.status(t).Capture.Packets
	for i := range 3 {
		l.udpBurst(t, 20, 100)
		waitUntil(t, fmt.Sprintf("burst %d counted while the witness is down", i), func() bool {
			return l.status(t).Capture.Packets > last
		})
		last = l.status(t).Capture.Packets
		start := time.Now()
		if out, code := carrelRun(t, "booking", "start", "--config", l.cfgPath, "--ref", fmt.Sprintf("wd-%d", i)); code != 0 {
			t.Fatalf("booking start while the witness is down: %d %s", code, out)
		}
		t.Logf("burst %d counted (%d packets); booking taken in %s", i, last, time.Since(start).Round(time.Millisecond))
	}
	if st := l.status(t); st.Mode != "capturing" || st.Bookings.Count < 3 {
		t.Fatalf("while the witness was down: mode %s, %d bookings", st.Mode, st.Bookings.Count)
	}

	w.Restart()
	took = waitUntil(t, "the log cosigned once the witness is back", func() bool { return cosignedAll(l.status(t)) })
	t.Logf("cosigned %s after the witness came back", took.Round(time.Millisecond))
	if st := l.status(t); st.Mode != "capturing" {
		t.Errorf("capture stopped: %s", st.ModeReason)
	}
}
