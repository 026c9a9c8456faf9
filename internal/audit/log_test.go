package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestOpenCreatesKeyAndRecordsIt(t *testing.T) {
	ctx := context.Background()
	l, dir := testLog(t)
	keyPath := filepath.Join(dir, "audit.key")
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode = %v; want 0600", fi.Mode().Perm())
		}
	}
	vkey, err := ReadVerifierKey(keyPath)
	if err != nil || vkey != l.Verifier() {
		t.Fatalf("ReadVerifierKey = %q, %v; want %q", vkey, err, l.Verifier())
	}
	if !strings.HasPrefix(vkey, testOrigin+"+") {
		t.Errorf("Verifier() = %q; want a key named %q", vkey, testOrigin)
	}
	es, err := l.Entries(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Kind != KeyCreated || es[0].Seq != 0 {
		t.Fatalf("entries of a new log = %+v; want one key.created", es)
	}
	fp := hex.EncodeToString(Fingerprint(vkey))
	if f := es[0].Fields; len(f) != 2 || f[0] != Hash("fingerprint", Fingerprint(vkey)) || f[1] != Token("key", "audit-signing") {
		t.Errorf("key.created fields = %+v; want fingerprint %s and key audit-signing", f, fp)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening again neither makes a key nor records one.
	l2 := reopen(t, dir, false)
	if l2.Verifier() != vkey {
		t.Errorf("reopened Verifier() = %q; want %q", l2.Verifier(), vkey)
	}
	if n, _ := l2.Size(ctx); n != 1 {
		t.Errorf("Size() after reopen = %d; want 1", n)
	}
	// Close signed a shutdown checkpoint.
	cp, err := l2.Latest(ctx)
	if err != nil || cp.Size != 1 {
		t.Errorf("Latest() after Close = %+v, %v; want a checkpoint of size 1", cp, err)
	}
}

func TestOpenOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	key := filepath.Join(dir, "audit.key")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no origin", Options{KeyPath: key}, "origin must be"},
		{"origin with plus", Options{Origin: "a+b", KeyPath: key}, "'+'"},
		{"no key path", Options{Origin: testOrigin}, "no signing key path"},
		{"read-only missing", Options{ReadOnly: true}, "no audit log"},
	}
	for _, tt := range tests {
		_, err := Open(db, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%+v) = %v; want an error containing %q", tt.opts, err, tt.want)
		}
	}
	if _, err := Open(filepath.Join(dir, "other.db"), Options{ReadOnly: true}); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open(missing, ReadOnly) = %v; want ErrNotExist", err)
	}
}

func TestOpenRefusesBrokenOrForeignKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	os.WriteFile(key, []byte("not a key\n"), 0o600)
	_, err := Open(filepath.Join(dir, "audit.db"), Options{Origin: testOrigin, KeyPath: key})
	if err == nil || !strings.Contains(err.Error(), "not a signing key") {
		t.Errorf("Open with a garbage key = %v; want \"not a signing key\"", err)
	}
	os.Remove(key)
	if _, err := Open(filepath.Join(dir, "a.db"), Options{Origin: "carrel/other", KeyPath: key}); err != nil {
		t.Fatal(err)
	}
	_, err = Open(filepath.Join(dir, "b.db"), Options{Origin: testOrigin, KeyPath: key})
	if err == nil || !strings.Contains(err.Error(), `named "carrel/other"`) {
		t.Errorf("Open with a key of another origin = %v; want it refused", err)
	}
}

func TestOriginIsKept(t *testing.T) {
	l, dir := testLog(t)
	l.Close()
	l2, err := Open(filepath.Join(dir, "audit.db"), Options{Origin: "carrel/renamed", KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Origin() != testOrigin {
		t.Errorf("Origin() after reopening with another origin = %q; want %q", l2.Origin(), testOrigin)
	}
}

func TestRecordOnce(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	e := sampleEvent(3)
	e.Once = "capture.start:2026-03"
	a, err := l.Record(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	e.Fields = []Field{Token("case", "other"), Token("mode", "packets")} // not compared: the first one wins
	b, err := l.Record(ctx, e)
	if err != nil || b != a {
		t.Errorf("Record(same Once) = %d, %v; want %d, nil", b, err, a)
	}
	if n, _ := l.Size(ctx); n != a+1 {
		t.Errorf("Size() = %d; want %d", n, a+1)
	}
	bad := sampleEvent(3)
	bad.Once = strings.Repeat("x", maxOnce+1)
	if _, err := l.Record(ctx, bad); err == nil {
		t.Errorf("Record(once of %d bytes) = nil error", len(bad.Once))
	}
}

func TestRecordRejectsInvalidEvent(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	seq, err := l.Record(ctx, Event{Kind: ServiceStop, Actor: "service", Fields: []Field{Token("reason", "has space")}})
	if err == nil || seq != -1 {
		t.Fatalf("Record(invalid) = %d, %v; want -1 and an error", seq, err)
	}
	if n, _ := l.Size(ctx); n != 1 {
		t.Errorf("Size() after a refused Record = %d; want 1", n)
	}
}

func TestUpdateIsAtomic(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	boom := errors.New("boom")
	err := l.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Record(ctx, sampleEvent(0)); err != nil {
			return err
		}
		if _, err := tx.Record(ctx, sampleEvent(1)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v; want boom", err)
	}
	if n, _ := l.Size(ctx); n != 1 {
		t.Errorf("Size() after a failed Update = %d; want 1", n)
	}
	var seqs []int64
	err = l.Update(ctx, func(tx *Tx) error {
		var rec Recorder = tx // a Tx can be handed to code that takes a Recorder
		for i := 0; i < 3; i++ {
			s, err := rec.Record(ctx, sampleEvent(i))
			if err != nil {
				return err
			}
			seqs = append(seqs, s)
		}
		return nil
	})
	if err != nil || len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
		t.Errorf("Update recording 3 = %v, %v; want seqs 1..3", seqs, err)
	}
	// The failed Update signalled no growth; the one that committed did.
	select {
	case <-l.Grown():
	default:
		t.Error("Grown() had no signal after an Update that recorded entries")
	}
	select {
	case <-l.Grown():
		t.Error("Grown() had a second signal pending")
	default:
	}
	checkpoint(t, l)
	mustVerify(t, l, VerifyOptions{})
}

func checkpoint(t testing.TB, l *Log) Checkpoint {
	t.Helper()
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	l, dir := testLog(t)
	// A second handle on the same file stands in for a second process.
	l2 := reopen(t, dir, false)
	const workers, each = 6, 15
	var wg sync.WaitGroup
	seen := sync.Map{}
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			log := l
			if w%2 == 1 {
				log = l2
			}
			for i := 0; i < each; i++ {
				seq, err := log.Record(ctx, sampleEvent(w*each+i))
				if err != nil {
					errs <- err
					return
				}
				if _, dup := seen.LoadOrStore(seq, true); dup {
					errs <- errors.New("sequence number handed out twice")
				}
				if i%5 == 0 {
					if _, err := log.Checkpoint(ctx); err != nil {
						errs <- err
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, _ := l.Size(ctx); n != 1+workers*each {
		t.Errorf("Size() = %d; want %d", n, 1+workers*each)
	}
	checkpoint(t, l)
	mustVerify(t, l, VerifyOptions{})
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	l, dir := testLog(t)
	fill(t, l, 10, 4)
	ro := reopen(t, dir, true)
	if _, err := ro.Record(ctx, sampleEvent(0)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Record = %v; want ErrReadOnly", err)
	}
	if _, err := ro.Checkpoint(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Checkpoint = %v; want ErrReadOnly", err)
	}
	if ro.Verifier() != l.Verifier() || ro.Origin() != testOrigin {
		t.Errorf("read-only Verifier, Origin = %q, %q; want %q, %q", ro.Verifier(), ro.Origin(), l.Verifier(), testOrigin)
	}
	// The writer goes on while the reader reads: its newest entries are
	// not signed yet, and Verify says so.
	fill(t, l, 3, 0)
	ve := verifyErr(t, ro, VerifyOptions{})
	if !errors.Is(ve, ErrUnsigned) || !strings.HasPrefix(ve.Error(), "entries 9–13: covered by no signed checkpoint (the latest signed checkpoint covers entries 0–8)") {
		t.Errorf("read-only Verify with 3 unsigned entries = %q; want entries 9–13 named, matching ErrUnsigned", ve)
	}
	checkpoint(t, l)
	fill(t, l, 1, 0)
	if ve := verifyErr(t, ro, VerifyOptions{}); !errors.Is(ve, ErrUnsigned) || !strings.HasPrefix(ve.Error(), "entry 14: covered by no signed checkpoint") {
		t.Errorf("read-only Verify with 1 unsigned entry = %q; want entry 14 named", ve)
	}
	rep := mustVerify(t, ro, VerifyOptions{Trusted: checkpoint(t, l).Note})
	if rep.Entries != 15 || rep.Checkpoints != 5 || rep.Latest.Size != 15 {
		t.Errorf("read-only Verify = %+v; want 15 entries, 5 checkpoints, latest of 15", rep)
	}
	if !strings.Contains(rep.Limits(), "the whole log is as it was when the trusted checkpoint was kept") {
		t.Errorf("Limits() = %q", rep.Limits())
	}
	fill(t, l, 2, 0)
	if _, err := ro.Prove(ctx, 16); err == nil || !strings.Contains(err.Error(), "newer than the latest checkpoint") {
		t.Errorf("read-only Prove(entry after the latest checkpoint) = %v; want \"newer than the latest checkpoint\"", err)
	}
	if _, err := ro.Prove(ctx, 17); err == nil || !strings.Contains(err.Error(), "no such entry") {
		t.Errorf("read-only Prove(beyond the log) = %v; want \"no such entry\"", err)
	}
	p, err := ro.Prove(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(p.Entry, p.Inclusion.Text(), p.Checkpoint.Note, l.Verifier()); err != nil {
		t.Errorf("VerifyInclusion(read-only Prove(5)) = %v", err)
	}
}

func TestCheckpointIfGrown(t *testing.T) {
	ctx := context.Background()
	l, _ := testLog(t)
	cp, made, err := l.CheckpointIfGrown(ctx)
	if err != nil || made || cp.Size != 1 {
		t.Fatalf("CheckpointIfGrown on a new log = %+v, %v, %v; want the checkpoint of size 1 made with the log", cp, made, err)
	}
	again, made, err := l.CheckpointIfGrown(ctx)
	if err != nil || made || string(again.Note) != string(cp.Note) {
		t.Errorf("CheckpointIfGrown without growth = %v, %v; want the same checkpoint, not made", made, err)
	}
	fill(t, l, 2, 0)
	cp, made, err = l.CheckpointIfGrown(ctx)
	if err != nil || !made || cp.Size != 3 {
		t.Errorf("CheckpointIfGrown after 2 entries = %+v, %v, %v; want size 3", cp, made, err)
	}
	if _, err := OpenCheckpoint(cp.Note, l.Verifier()); err != nil {
		t.Errorf("OpenCheckpoint(made checkpoint) = %v", err)
	}
	rep := mustVerify(t, l, VerifyOptions{})
	if rep.Checkpoints != 2 {
		t.Errorf("Verify().Checkpoints = %d; want 2", rep.Checkpoints)
	}
}

func TestClosed(t *testing.T) {
	l, _ := testLog(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(context.Background(), sampleEvent(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v; want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
}

// TestKeyCreationCrashLeftovers: a temporary key file left by a crash
// (keyfile's, or the name older versions used) is never used as the key;
// Open writes a whole new one and removes them.
func TestKeyCreationCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	leftovers := []string{key + ".tmp", filepath.Join(dir, ".audit.key.0123456789abcdef.tmp")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("PRIVATE+KEY+half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(filepath.Join(dir, "audit.db"), Options{Origin: testOrigin, KeyPath: key})
	if err != nil {
		t.Fatalf("Open beside a leftover temporary key = %v", err)
	}
	defer l.Close()
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("leftover %s still there (%v)", p, err)
		}
	}
	if vkey, err := ReadVerifierKey(key); err != nil || vkey != l.Verifier() {
		t.Errorf("ReadVerifierKey = %q, %v; want %q", vkey, err, l.Verifier())
	}
}

// TestFirstCheckpoint: a new log is signed as it is made, in the
// transaction that records its key; a log with entries and no checkpoint
// is one whose checkpoints were deleted, and the PC will not sign it.
func TestFirstCheckpoint(t *testing.T) {
	ctx := context.Background()
	_, dir := testLog(t) // open, never closed: no shutdown checkpoint
	ro := reopen(t, dir, true)
	cp, err := ro.Latest(ctx)
	if err != nil || cp.Size != 1 {
		t.Fatalf("Latest() of a new log = %v, %v; want the checkpoint of size 1", cp, err)
	}
	rep := mustVerify(t, ro, VerifyOptions{})
	if rep.Checkpoints != 1 || rep.Entries != 1 {
		t.Errorf("Verify() of a new log = %+v", rep)
	}
	p, err := ro.Prove(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(p.Entry, p.Inclusion.Text(), p.Checkpoint.Note, ro.Verifier()); err != nil {
		t.Errorf("VerifyInclusion(key.created) = %v", err)
	}
}
