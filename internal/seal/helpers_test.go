package seal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// memRecorder is an in-memory audit log for tests until audit.Log exists:
// it refuses undeclared events (Event.Check) and honours Once.
type memRecorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []audit.Event
	once   map[string]int64
	fail   error // when set, Record fails as an unavailable audit log would
}

func newRecorder(t testing.TB) *memRecorder { return &memRecorder{t: t, once: map[string]int64{}} }

func (r *memRecorder) Record(ctx context.Context, e audit.Event) (int64, error) {
	if err := e.Check(); err != nil {
		r.t.Errorf("seal recorded an undeclared event: %v", err)
		return 0, err
	}
	if len(e.Once) > 256 { // audit.Log's bound
		r.t.Errorf("seal recorded a Once of %d bytes", len(e.Once))
		return 0, errors.New("once too long")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	if seq, ok := r.once[e.Once]; e.Once != "" && ok {
		return seq, nil
	}
	r.events = append(r.events, e)
	seq := int64(len(r.events))
	if e.Once != "" {
		r.once[e.Once] = seq
	}
	return seq, nil
}

func (r *memRecorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

// of returns the recorded events of kind k.
func (r *memRecorder) of(k audit.Kind) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func field(e audit.Event, key string) string {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// clock is an injectable clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keypair is a head librarian's identity written as an identity file.
type keypair struct {
	id        *age.X25519Identity
	recipient string
	file      string
}

func newKeypair(t testing.TB) keypair {
	t.Helper()
	path := filepath.Join(t.TempDir(), "librarian.key")
	r, err := seal.WriteIdentityFile(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := seal.LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	return keypair{id: ids[0], recipient: r, file: path}
}

// env is a store in a temporary data folder with its recorder and clock.
type env struct {
	t       testing.TB
	dataDir string
	rec     *memRecorder
	clock   *clock
	store   *seal.Store
	key     keypair
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir())
}

// newEnvIn is newEnv with the data folder in dataDir.
func newEnvIn(t testing.TB, dataDir string) *env {
	t.Helper()
	e := &env{t: t, dataDir: dataDir, rec: newRecorder(t), clock: newClock(), key: newKeypair(t)}
	e.store = e.open()
	t.Cleanup(func() { e.store.Close() })
	return e
}

func (e *env) open() *seal.Store {
	e.t.Helper()
	s, err := seal.Open(context.Background(), e.dataDir, seal.Options{Recorder: e.rec, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// reopen closes the store and opens it again, as a restart does.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.store = e.open()
}

func (e *env) writer(o seal.WriterOptions) *seal.Writer {
	e.t.Helper()
	if o.Case == "" {
		o.Case = "case-1"
	}
	if o.Format == "" {
		o.Format = seal.JSONL
	}
	if o.Recipients == nil {
		o.Recipients = []string{e.key.recipient}
	}
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	w, err := e.store.NewWriter(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) segments(f seal.Filter) []seal.Segment {
	e.t.Helper()
	segs, err := e.store.Segments(context.Background(), f)
	if err != nil {
		e.t.Fatal(err)
	}
	return segs
}

// ageCLIDecrypt decrypts a file with Debian's age CLI and the identity file.
func ageCLIDecrypt(t testing.TB, identity, file string) []byte {
	t.Helper()
	agePath := testenv.NeedTool(t, "age")
	var out, errb bytes.Buffer
	cmd := exec.Command(agePath, "-d", "-i", identity, file)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("age -d %s: %v: %s", filepath.Base(file), err, errb.String())
	}
	return out.Bytes()
}

// decrypt decrypts in-process; only tests do this, never package seal.
func decrypt(t testing.TB, id age.Identity, file string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatalf("decrypting %s: %v", filepath.Base(file), err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatalf("decrypting %s: %v", filepath.Base(file), err)
	}
	return b.Bytes()
}

func jsonRecord(i int) []byte {
	return fmt.Appendf(nil, `{"kind":"dns","ts":"2024-05-01T12:00:00Z","name":"host-%06d.example","qtype":"A","rcode":0}`+"\n", i)
}

var errAuditDown = errors.New("audit log unavailable")
