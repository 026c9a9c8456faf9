// The tests run a real litewitness (internal/witness/witnesstest).

//go:build linux

package witness

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/testenv"
	"github.com/carrel-lib/carrel/internal/witness/witnesstest"
)

const origin = "bib.example.dk/carrel/pc-01"

// deadline only stops a hang.
const deadline = 60 * time.Second

// openLog opens (creating) the audit log in dir with origin, its key
// beside it.
func openLog(t *testing.T, dir string) *audit.Log {
	t.Helper()
	l, err := audit.Open(filepath.Join(dir, audit.DBFile), audit.Options{Origin: origin, KeyPath: filepath.Join(dir, audit.KeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// grow records n entries and signs a checkpoint of the whole log.
func grow(t *testing.T, l *audit.Log, n int, reason string) audit.Checkpoint {
	t.Helper()
	ctx := context.Background()
	for range n {
		if _, err := l.Record(ctx, audit.Event{Kind: audit.ServiceStop, Actor: "test", Fields: []audit.Field{audit.Token("reason", reason)}}); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// pushing runs a Pusher for l to w until the test ends and returns the
// channel its results arrive on.
func pushing(t *testing.T, l *audit.Log, ws ...*witnesstest.Witness) <-chan Result {
	t.Helper()
	results := make(chan Result, 100)
	p := New(Options{Log: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }, Poll: time.Hour,
		Result: func(r Result) { results <- r }})
	var ts []Target
	for i, w := range ws {
		k, err := audit.ParseWitnessKey(w.Key)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, Target{Name: "w" + strconv.Itoa(i+1), URL: w.URL, Key: k})
	}
	p.SetTargets(ts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	// Drain while the pusher stops: a worker blocked handing over a result
	// (the test stopped reading) must not hold up the stop.
	t.Cleanup(func() {
		cancel()
		for {
			select {
			case <-done:
				return
			case <-results:
			}
		}
	})
	return results
}

// await returns the first result for which ok holds, failing after the
// deadline with the results seen.
func await(t *testing.T, results <-chan Result, what string, ok func(Result) bool) Result {
	t.Helper()
	timeout := time.After(deadline)
	var seen []string
	for {
		select {
		case r := <-results:
			if ok(r) {
				return r
			}
			seen = append(seen, describe(r))
			if len(seen) > 5 {
				seen = seen[1:] // the last few say enough
			}
		case <-timeout:
			t.Fatalf("waiting for %s: not after %s; last results: %s", what, deadline, strings.Join(seen, "; "))
		}
	}
}

func describe(r Result) string {
	switch {
	case r.Refusal != nil:
		return r.Witness + " refused " + r.Refusal.Why + ": " + r.Refusal.Detail
	case r.Err != nil:
		return r.Witness + " failed: " + r.Err.Error()
	case r.Cosigned:
		return r.Witness + " cosigned " + strconv.FormatInt(r.Size, 10)
	}
	return r.Witness + " nothing"
}

func cosigned(size int64) func(Result) bool {
	return func(r Result) bool { return r.Cosigned && r.Size == size }
}

func TestCosignedAndVerified(t *testing.T) {
	w1 := witnesstest.Start(t, witnesstest.Options{Name: "witness.test/w1"})
	w2 := witnesstest.Start(t, witnesstest.Options{Name: "witness.test/w2"})
	dir := t.TempDir()
	l := openLog(t, dir)
	for _, w := range []*witnesstest.Witness{w1, w2} {
		w.AddLog(origin, l.Verifier())
	}
	cp := grow(t, l, 5, "first")
	results := pushing(t, l, w1, w2)
	got := map[string]bool{}
	for len(got) < 2 {
		r := await(t, results, "both witnesses to cosign size "+strconv.FormatInt(cp.Size, 10), cosigned(cp.Size))
		got[r.Witness] = true
	}
	// The next checkpoint is pushed with a consistency proof from the last.
	cp = grow(t, l, 7, "second")
	got = map[string]bool{}
	for len(got) < 2 {
		r := await(t, results, "both witnesses to cosign the next checkpoint", cosigned(cp.Size))
		got[r.Witness] = true
	}
	for _, w := range []*witnesstest.Witness{w1, w2} {
		if size := w.TreeSize(origin); size != strconv.FormatInt(cp.Size, 10) {
			t.Errorf("witness %s holds size %s; want %d", w.Name, size, cp.Size)
		}
	}
	rep, err := l.Verify(context.Background(), audit.VerifyOptions{WitnessKeys: []string{w1.Key, w2.Key}, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Witnessed == nil || rep.Witnessed.Size != cp.Size || rep.Cosignatures != 4 {
		t.Fatalf("Verify: witnessed %v, %d cosignatures; want size %d and 4", rep.Witnessed, rep.Cosignatures, cp.Size)
	}
	for _, name := range []string{"w1", "w2"} {
		st, _, err := l.WitnessState(context.Background(), name)
		if err != nil || st.Size != cp.Size || st.Cosigned.IsZero() || st.Error != "" || st.Refusal != nil {
			t.Errorf("state of %s = %+v, %v", name, st, err)
		}
	}
}

// The witness down for a while: the log goes on recording and signing
// without waiting for it, and the checkpoint is cosigned once it is back.
func TestWitnessDownThenCosigned(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	l := openLog(t, t.TempDir())
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 3, "before")
	results := pushing(t, l, w)
	await(t, results, "the first cosignature", cosigned(cp.Size))

	w.Stop()
	start := time.Now()
	cp = grow(t, l, 50, "while-down")
	recording := time.Since(start)
	r := await(t, results, "a failed push while the witness is down", func(r Result) bool { return r.Err != nil })
	if !strings.Contains(r.Err.Error(), "unreachable") {
		t.Errorf("error while down = %v; want unreachable", r.Err)
	}
	// Several retries, each failing, none holding up the log.
	await(t, results, "a second failed push", func(r Result) bool { return r.Err != nil })
	st, _, _ := l.WitnessState(context.Background(), "w1")
	if !strings.Contains(st.Error, "unreachable") || st.Size >= cp.Size {
		t.Errorf("state while down = %+v", st)
	}
	t.Logf("50 entries and a checkpoint recorded in %s while the witness was down", recording)

	w.Restart()
	await(t, results, "the cosignature after the witness is back", cosigned(cp.Size))
	if st, _, _ := l.WitnessState(context.Background(), "w1"); st.Error != "" || st.Size != cp.Size {
		t.Errorf("state after recovery = %+v", st)
	}
}

// A witness that holds another size than carrel remembers (its state was
// lost, or the witness was restored) answers 409; carrel resends from the
// size it names.
func TestConflictResendsFromNamedSize(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	dir := t.TempDir()
	l := openLog(t, dir)
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 4, "a")
	results := pushing(t, l, w)
	await(t, results, "the first cosignature", cosigned(cp.Size))
	// Forget what the witness cosigned.
	sqlite(t, filepath.Join(dir, audit.DBFile), `UPDATE witnesses SET size = 0, cosigned = ''`)
	cp = grow(t, l, 4, "b")
	r := await(t, results, "the cosignature after the 409", cosigned(cp.Size))
	if r.Resent != 1 {
		t.Fatalf("result = %s after %d 409 answers; want one", describe(r), r.Resent)
	}
}

// refusedRewritten: someone with the PC's key (audit.key) rewrites the log
// and signs it again. The witness refuses the rewritten history, carrel
// records a witness.refused entry and keeps the refusal for `carrel
// status` until it is acknowledged.
func TestRewrittenLogRefused(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	dir := t.TempDir()
	l := openLog(t, dir)
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 6, "genuine")
	results := pushing(t, l, w)
	await(t, results, "the genuine log's cosignature", cosigned(cp.Size))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The rewrite: a new audit.db with other entries, signed with the same
	// key, and the witnesses table copied over so that carrel's state looks
	// undisturbed.
	forged := t.TempDir()
	copyFile(t, filepath.Join(dir, audit.KeyFile), filepath.Join(forged, audit.KeyFile))
	l2 := openLog(t, forged)
	if l2.Verifier() != l.Verifier() {
		t.Fatalf("the forged log has another key")
	}
	cp2 := grow(t, l2, 9, "forged")
	sqlite(t, filepath.Join(forged, audit.DBFile), `ATTACH '`+filepath.Join(dir, audit.DBFile)+`' AS genuine;
		INSERT INTO witnesses SELECT * FROM genuine.witnesses;`)
	if _, err := l2.Verify(context.Background(), audit.VerifyOptions{}); err != nil {
		t.Fatalf("the forged log does not verify on its own: %v", err)
	}
	results = pushing(t, l2, w)
	r := await(t, results, "the witness to refuse the rewritten log", func(r Result) bool { return r.Refusal != nil })
	if r.Refusal.Why != audit.RefusedNotExtension || !r.NewRefusal || r.Refusal.WitnessSize != cp.Size || r.Refusal.LogSize != cp2.Size {
		t.Fatalf("refusal = %+v (new %v); want not-extension at witness size %d, log size %d", r.Refusal, r.NewRefusal, cp.Size, cp2.Size)
	}
	assertRefusalEntry(t, l2, r.Refusal, audit.RefusedNotExtension)
	// The witness still holds the genuine size.
	if size := w.TreeSize(origin); size != strconv.FormatInt(cp.Size, 10) {
		t.Errorf("witness holds %s; want the genuine %d", size, cp.Size)
	}
	// Retries refuse again without a second entry.
	r = await(t, results, "a second refusal", func(r Result) bool { return r.Refusal != nil })
	if r.NewRefusal {
		t.Errorf("the repeated refusal was recorded again")
	}
}

// copyLog copies the audit log in data folder dir (its database, taken
// whole while it is open, and its key) to a new folder, as a backup or a
// cloned disk would, and returns that folder.
func copyLog(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	sqlite(t, filepath.Join(dir, audit.DBFile), `VACUUM INTO '`+filepath.Join(to, audit.DBFile)+`'`)
	copyFile(t, filepath.Join(dir, audit.KeyFile), filepath.Join(to, audit.KeyFile))
	return to
}

// The log cut back to an earlier copy of audit.db: the witness has
// cosigned more than it holds.
func TestRolledBackLogRefused(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	dir := t.TempDir()
	l := openLog(t, dir)
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 3, "early")
	results := pushing(t, l, w)
	await(t, results, "the early cosignature", cosigned(cp.Size))
	backup := copyLog(t, dir)
	cp = grow(t, l, 10, "late")
	await(t, results, "the late cosignature", cosigned(cp.Size))
	l.Close()

	old := openLog(t, backup)
	results = pushing(t, old, w)
	r := await(t, results, "the witness to refuse the rolled-back log", func(r Result) bool { return r.Refusal != nil })
	if r.Refusal.Why != audit.RefusedRolledBack || r.Refusal.WitnessSize != cp.Size {
		t.Fatalf("refusal = %+v; want rolled-back with the witness at %d", r.Refusal, cp.Size)
	}
	assertRefusalEntry(t, old, r.Refusal, audit.RefusedRolledBack)
}

// The data folder wiped and the service started again: a new log under the
// same origin with a new key. The origin stays the same (it comes from the
// config), so the witness knows it, and refuses the new key.
func TestWipedLogRefused(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	dir := t.TempDir()
	l := openLog(t, dir)
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 3, "before-wipe")
	results := pushing(t, l, w)
	await(t, results, "the cosignature before the wipe", cosigned(cp.Size))
	l.Close()

	fresh := openLog(t, t.TempDir())
	if fresh.Origin() != origin || fresh.Verifier() == l.Verifier() {
		t.Fatalf("the new log: origin %q, key %q", fresh.Origin(), fresh.Verifier())
	}
	grow(t, fresh, 1, "after-wipe")
	results = pushing(t, fresh, w)
	r := await(t, results, "the witness to refuse the new log", func(r Result) bool { return r.Refusal != nil })
	if r.Refusal.Why != audit.RefusedKeyNotTrusted {
		t.Fatalf("refusal = %+v; want key-not-trusted", r.Refusal)
	}
	assertRefusalEntry(t, fresh, r.Refusal, audit.RefusedKeyNotTrusted)
}

// A cloned PC: its data folder copied to a second PC, whose service pushes
// the copy under the same origin and key while the original goes on being
// cosigned. The witness names a new size at every refused push (the
// original's latest), and the copy is shorter than it or diverges from
// it. The copy's audit log records each distinct cause once, not once per
// attempt, also after an administrator acknowledged it; the refusal stays
// pending in the state (carrel status) until then, and every attempt still
// reports it.
func TestForkRefusedOncePerCause(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	dir := t.TempDir()
	l := openLog(t, dir)
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 5, "shared")
	results := pushing(t, l, w)
	await(t, results, "the shared history's cosignature", cosigned(cp.Size))

	clone := copyLog(t, dir)
	// The original moves on first, so the copy's history parts from what
	// the witness cosigned.
	cp = grow(t, l, 1, "original")
	await(t, results, "the original's next cosignature", cosigned(cp.Size))
	copied := openLog(t, clone)
	grow(t, copied, 40, "clone") // longer than the original: not an extension
	cloneResults := pushing(t, copied, w)

	refused := func(r Result) bool { return r.Refusal != nil }
	attempts := 0
	seenSizes := map[int64]bool{}
	advance := func(n int, why string) {
		t.Helper()
		cp = grow(t, l, n, "original")
		await(t, results, "the original's cosignature", cosigned(cp.Size))
		// A refusal that names the witness's new size: the clone's pusher
		// pushed again after the witness moved on.
		r := await(t, cloneResults, "a refusal naming the witness's size", func(r Result) bool {
			if refused(r) {
				attempts++
			}
			return refused(r) && r.Refusal.WitnessSize == cp.Size
		})
		if r.Refusal.Why != why {
			t.Fatalf("refusal at witness size %d = %+v; want %s", cp.Size, r.Refusal, why)
		}
		seenSizes[r.Refusal.WitnessSize] = true
	}
	for range 10 {
		advance(1, audit.RefusedNotExtension)
	}
	advance(50, audit.RefusedRolledBack) // the original is now longer than the copy
	for range 5 {
		advance(1, audit.RefusedRolledBack)
	}
	entries := func() []audit.Entry {
		es, err := copied.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.WitnessRefused}})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	es := entries()
	t.Logf("%d refused pushes naming %d witness sizes; %d witness.refused entries", attempts, len(seenSizes), len(es))
	if len(seenSizes) < 16 || len(es) != 2 {
		t.Fatalf("%d witness.refused entries after refusals naming %d sizes; want 2 (not-extension, rolled-back)", len(es), len(seenSizes))
	}
	for i, why := range []string{audit.RefusedNotExtension, audit.RefusedRolledBack} {
		if v, _ := es[i].Value("why"); v != why {
			t.Errorf("entry %d why=%s; want %s", es[i].Seq, v, why)
		}
	}
	st, _, err := copied.WitnessState(context.Background(), "w1")
	if err != nil || !st.Refusal.Pending() || st.Refusal.Entry != es[1].Seq || !strings.Contains(st.Error, strconv.FormatInt(cp.Size, 10)) {
		t.Fatalf("state = %+v, %v; want the rolled-back refusal pending and the latest detail in the error", st, err)
	}

	// Acknowledged: the clone goes on being refused for the same reason,
	// which raises no new alarm (the copy never cosigns again, so the
	// episode goes on).
	if _, err := copied.AcknowledgeRefusal(context.Background(), "w1", "uid:0"); err != nil {
		t.Fatal(err)
	}
	advance(1, audit.RefusedRolledBack)
	advance(1, audit.RefusedRolledBack)
	if es := entries(); len(es) != 2 {
		t.Fatalf("%d witness.refused entries after the acknowledgement and two more refusals; want still 2", len(es))
	}
	if st, _, _ := copied.WitnessState(context.Background(), "w1"); st.Refusal.Pending() {
		t.Errorf("the acknowledged refusal is pending again: %+v", st.Refusal)
	}
}

// A log the witness was never told about is an error to fix, not a
// refusal: nothing is recorded in the audit log.
func TestUnregisteredLogIsAnError(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	l := openLog(t, t.TempDir())
	grow(t, l, 2, "x")
	size, _ := l.Size(context.Background())
	results := pushing(t, l, w)
	r := await(t, results, "a failed push", func(r Result) bool { return r.Err != nil || r.Refusal != nil })
	if r.Refusal != nil || !strings.Contains(r.Err.Error(), "does not know this log") || !strings.Contains(r.Err.Error(), origin) {
		t.Fatalf("result = %s; want an error naming the origin to register", describe(r))
	}
	if n, _ := l.Size(context.Background()); n != size {
		t.Errorf("the log grew by %d entries", n-size)
	}
}

// A config with a wrong key for the witness: its answer does not verify,
// and nothing is stored.
func TestWrongWitnessKeyStoresNothing(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	other := witnesstest.Start(t, witnesstest.Options{Name: w.Name})
	l := openLog(t, t.TempDir())
	w.AddLog(origin, l.Verifier())
	grow(t, l, 2, "x")
	w.Key = other.Key // what a mistyped config would say
	results := pushing(t, l, w)
	r := await(t, results, "a failed push", func(r Result) bool { return r.Err != nil || r.Cosigned })
	if r.Err == nil || !strings.Contains(r.Err.Error(), "not a valid cosignature") {
		t.Fatalf("result = %s; want an invalid cosignature", describe(r))
	}
	rep, err := l.Verify(context.Background(), audit.VerifyOptions{WitnessKeys: []string{w.Key}})
	if err != nil || rep.Cosignatures+rep.Unchecked != 0 {
		t.Errorf("Verify = %d cosignatures, %d unchecked, %v; want none stored", rep.Cosignatures, rep.Unchecked, err)
	}
}

func assertRefusalEntry(t *testing.T, l *audit.Log, r *audit.Refusal, why string) {
	t.Helper()
	ent, err := l.Entry(context.Background(), r.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ent.Value("why"); ent.Kind != audit.WitnessRefused || v != why {
		t.Errorf("entry %d = %s why=%s; want witness.refused why=%s", r.Entry, ent.Kind, v, why)
	}
	st, _, err := l.WitnessState(context.Background(), "w1")
	if err != nil || !st.Refusal.Pending() || st.Refusal.Why != why {
		t.Errorf("state = %+v, %v; want a pending %s refusal", st, err, why)
	}
}

func sqlite(t *testing.T, db, script string) {
	t.Helper()
	bin := testenv.NeedTool(t, "sqlite3")
	if out, err := exec.Command(bin, db, script).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", script, err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
