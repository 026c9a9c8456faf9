package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/api"
	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/config"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// harness runs the daemon in this process on a config in a temporary folder.
type harness struct {
	dir, cfgPath string
	cfg          *config.Config
	client       *api.Client
	cancel       context.CancelFunc
	done         chan error
	log          *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeConfig(t *testing.T, dir string, extra string) string {
	t.Helper()
	doc := config.Example(filepath.Join(dir, "data"))
	doc = bytes.Replace(doc, []byte(`# id = "pc-01"`), []byte(`id = "pc-test"`), 1)
	doc = bytes.Replace(doc, []byte(`client_group = "carrel-booking"`), []byte(`client_group = ""`), 1)
	doc = append(doc, extra...)
	p := filepath.Join(dir, "carrel.toml")
	if err := os.WriteFile(p+".tmp", doc, 0o600); err != nil {
		t.Fatal(err)
	}
	// Replace by rename, as deployment tools do.
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	return p
}

func start(t *testing.T, dir string, now func() time.Time) *harness {
	t.Helper()
	h := &harness{dir: dir, cfgPath: filepath.Join(dir, "carrel.toml"), done: make(chan error, 1), log: &syncBuffer{}}
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	ready := make(chan struct{})
	go func() {
		h.done <- Run(ctx, Options{ConfigPath: h.cfgPath, Version: "test", Now: now, Ready: ready,
			Log: slog.New(slog.NewTextHandler(h.log, nil))})
	}()
	select {
	case <-ready:
	case err := <-h.done:
		t.Fatalf("Run() = %v before ready\n%s", err, h.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("not ready after 20s\n%s", h.log)
	}
	h.client = api.NewClient(cfg.APIAddr())
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("Run() = %v\n%s", err, h.log)
	}
}

// entries reads the audit log as the CLI would, while the service runs.
func entries(t *testing.T, dir string, kinds ...audit.Kind) []audit.Entry {
	t.Helper()
	l, err := audit.Open(filepath.Join(dir, "data", audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Entries(context.Background(), audit.Query{Kinds: kinds})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func field(e audit.Entry, key string) string {
	v, _ := e.Value(key)
	return v
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLifecycleIsAudited(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	kinds := func() []string {
		var out []string
		for _, e := range entries(t, dir) {
			out = append(out, string(e.Kind))
		}
		return out
	}
	got := strings.Join(kinds(), " ")
	for _, want := range []string{"key.created", "service.start", "config.accepted"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit after start = %s; want %s", got, want)
		}
	}
	keys := entries(t, dir, audit.KeyCreated)
	var created []string
	for _, e := range keys {
		created = append(created, field(e, "key"))
	}
	if !strings.Contains(strings.Join(created, ","), "patron-hmac") || len(created) < 2 {
		t.Errorf("key.created entries = %v; want the audit key and the patron-hmac key", created)
	}
	h.stop(t)
	stops := entries(t, dir, audit.ServiceStop)
	if len(stops) != 1 || field(stops[0], "reason") != "signal" {
		t.Errorf("service.stop entries = %+v; want one with reason signal", stops)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", runningFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run marker after clean stop: %v; want removed", err)
	}
	// A clean restart records no unclean stop and creates no new keys.
	h2 := start(t, dir, nil)
	h2.stop(t)
	if n := len(entries(t, dir, audit.ServiceUncleanStop)); n != 0 {
		t.Errorf("service.unclean-stop entries after clean stops = %d; want 0", n)
	}
	if n := len(entries(t, dir, audit.KeyCreated)); n != len(keys) {
		t.Errorf("key.created entries after restart = %d; want %d", n, len(keys))
	}
	// Every checkpoint verifies.
	l, err := audit.Open(filepath.Join(dir, "data", audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Verify(context.Background(), audit.VerifyOptions{}); err != nil {
		t.Errorf("audit verify after two runs: %v", err)
	}
}

func TestUncleanStopIsDetected(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	if _, err := h.client.Start(context.Background(), api.StartRequest{Ref: "open-1"}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	// What a crash leaves behind: the run marker, and an open booking.
	os.WriteFile(filepath.Join(dir, "data", runningFile), []byte("1\n"), 0o600)
	st, _, _ := booking.LoadOrCreateSecret(filepath.Join(dir, "data", patronKey))
	bs, err := booking.Open(filepath.Join(dir, "data", bookingsFile), booking.Options{Secret: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Start(context.Background(), booking.StartRequest{PC: "pc-test", Ref: "open-2"}); err != nil {
		t.Fatal(err)
	}
	bs.Close()

	start(t, dir, nil)
	if n := len(entries(t, dir, audit.ServiceUncleanStop)); n != 1 {
		t.Errorf("service.unclean-stop entries = %d; want 1", n)
	}
	ints := entries(t, dir, audit.BookingInterrupted)
	// Both bookings open at the restart are closed: the one left by the
	// crash and the one left open across the earlier clean stop.
	if len(ints) != 1 || field(ints[0], "count") != "2" {
		t.Errorf("booking.interrupted entries = %+v; want one with count 2", ints)
	}
}

func TestConfigReload(t *testing.T) {
	old := pollEvery
	pollEvery = 200 * time.Millisecond
	t.Cleanup(func() { pollEvery = old })
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	ctx := context.Background()
	status := func() api.Status {
		st, err := h.client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// A valid change is in force within two seconds.
	writeConfig(t, dir, "")
	p := h.cfgPath
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1), 0o600)
	waitFor(t, "new retention in force", 2*time.Second, func() bool { return status().Retention == "14d" })
	acc := entries(t, dir, audit.ConfigAccepted)
	if len(acc) != 2 || field(acc[1], "source") != "reload" {
		t.Errorf("config.accepted entries = %d (last source %q); want 2, the last a reload", len(acc), field(acc[len(acc)-1], "source"))
	}

	// An invalid file is refused; the last good config stays in force.
	b, _ = os.ReadFile(p)
	bad := bytes.Replace(b, []byte(`retention = "14d"`), []byte(`retention = "0d"`), 1)
	bad = append(bad, "\n[capture]\nmax_case_days = 120\n"...) // a duplicate table: a syntax-level error too
	os.WriteFile(p, bad, 0o600)
	waitFor(t, "refusal shown in status", 2*time.Second, func() bool { return status().ConfigRejected != "" })
	if st := status(); st.Retention != "14d" {
		t.Errorf("retention after a refused config = %s; want 14d still in force", st.Retention)
	}
	// (The poll may also have seen the file half-written: a second,
	// different refusal is fine.) The same broken file polled again is not
	// audited again.
	time.Sleep(300 * time.Millisecond)
	n := len(entries(t, dir, audit.ConfigRejected))
	if n == 0 {
		t.Fatalf("config.rejected entries = 0; want the refusal audited")
	}
	time.Sleep(600 * time.Millisecond)
	if m := len(entries(t, dir, audit.ConfigRejected)); m != n {
		t.Errorf("config.rejected entries after more polls = %d; want still %d", m, n)
	}

	// Valid content, but writable by others: refused as well.
	os.WriteFile(p, bytes.Replace(b, []byte(`retention = "14d"`), []byte(`retention = "7d"`), 1), 0o600)
	os.Chmod(p, 0o666)
	waitFor(t, "permission refusal", 2*time.Second, func() bool {
		return strings.Contains(status().ConfigRejected, "writable by group or others")
	})
	if st := status(); st.Retention != "14d" {
		t.Errorf("retention after an unsafe config = %s; want 14d", st.Retention)
	}
	rej := entries(t, dir, audit.ConfigRejected)
	if len(rej) != n+1 || !strings.Contains(field(rej[n], "problems"), "permissions of") {
		t.Errorf("config.rejected = %+v; want one more, about permissions", rej)
	}
	// The entries name keys (or the path whose permissions are wrong),
	// never the values the file held.
	keyList := regexp.MustCompile(`^[A-Za-z0-9_.\[\]()#-]+(, [A-Za-z0-9_.\[\]()#-]+)*$`)
	for _, e := range rej {
		p := field(e, "problems")
		if !strings.HasPrefix(p, "permissions of ") && !keyList.MatchString(p) || strings.Contains(p, `"0d"`) || strings.Contains(p, "= 120") {
			t.Errorf("config.rejected entry carries more than keys: %q", p)
		}
	}
	os.Chmod(p, 0o600)
	waitFor(t, "fixed config in force", 2*time.Second, func() bool {
		st := status()
		return st.Retention == "7d" && st.ConfigRejected == ""
	})
}

func TestRetentionAtStart(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	h.stop(t)

	// Bookings made 40 and 10 days ago; retention is 28 days.
	now := time.Now()
	secret, _, _ := booking.LoadOrCreateSecret(filepath.Join(dir, "data", patronKey))
	for _, b := range []struct {
		ref string
		age time.Duration
	}{{"old", 40 * 24 * time.Hour}, {"recent", 10 * 24 * time.Hour}} {
		at := now.Add(-b.age)
		s, err := booking.Open(filepath.Join(dir, "data", bookingsFile), booking.Options{Secret: secret, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(context.Background(), booking.StartRequest{PC: "pc-test", Ref: b.ref}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.End(context.Background(), b.ref); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	h = start(t, dir, func() time.Time { return now })
	list, err := h.client.List(context.Background(), time.Time{}, time.Time{})
	if err != nil || len(list) != 1 || list[0].Ref != "recent" {
		t.Errorf("bookings after start = %+v, %v; want only recent", list, err)
	}
	runs := entries(t, dir, audit.BookingRetention)
	last := runs[len(runs)-1]
	if field(last, "deleted") != "1" || field(last, "from") == "" {
		t.Errorf("last booking.retention = %+v; want deleted 1 with its time range", last)
	}
	st, _ := h.client.Status(context.Background())
	if st.Bookings.Count != 1 || st.NextPurge.Before(now) {
		t.Errorf("status = %+v; want 1 booking and a next purge in the future", st.Bookings)
	}
}

func TestRefusesToStart(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"invalid config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "carrel.toml"), []byte("version = 1\n[booking]\nretention = \"0d\"\n"), 0o600)
		}, "booking.retention"},
		{"missing config", func(t *testing.T, dir string) {}, "config file not found"},
		{"config writable by others", func(t *testing.T, dir string) {
			p := writeConfig(t, dir, "")
			os.Chmod(p, 0o646)
		}, "writable by group or others"},
		{"data folder writable by others", func(t *testing.T, dir string) {
			writeConfig(t, dir, "")
			os.Mkdir(filepath.Join(dir, "data"), 0o700)
			os.Chmod(filepath.Join(dir, "data"), 0o777)
		}, "writable by group or others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			err := Run(context.Background(), Options{ConfigPath: filepath.Join(dir, "carrel.toml"), Log: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run() = %v; want a refusal mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOneServicePerDataFolder(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "")
	start(t, dir, nil)
	err := Run(context.Background(), Options{ConfigPath: filepath.Join(dir, "carrel.toml"), Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "another carrel is already running") {
		t.Errorf("second Run() = %v; want refusal", err)
	}
}

// TestRefusedCallerIsAudited: a caller outside the booking-client group who
// reaches the socket (its mode opened by hand) is refused by the service,
// and the refusal is in the audit log with the account and why.
func TestRefusedCallerIsAudited(t *testing.T) {
	testenv.NeedRoot(t)
	curl := testenv.NeedTool(t, "curl", "setpriv")
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	writeConfig(t, dir, "")
	// The socket in a folder others can reach; the data folder stays 0700.
	p := filepath.Join(dir, "carrel.toml")
	b, _ := os.ReadFile(p)
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	os.Chmod(filepath.Join(dir, "run"), 0o755) // the daemon of an earlier test set the umask to 077
	b = bytes.Replace(b, []byte(filepath.Join(dir, "data", "api.sock")), []byte(filepath.Join(dir, "run", "api.sock")), 1)
	os.WriteFile(p, b, 0o600)
	start(t, dir, nil)
	sock := filepath.Join(dir, "run", "api.sock")
	os.Chmod(sock, 0o666)
	out, _ := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", curl, "-sS",
		"--unix-socket", sock, "-d", `{"ref":"x"}`, "http://carrel/v1/bookings/start").CombinedOutput()
	if !strings.Contains(string(out), "may not use the carrel API") {
		t.Fatalf("curl as nobody: %s; want a refusal", out)
	}
	es := entries(t, dir, audit.APIRefused)
	if len(es) != 1 || field(es[0], "uid") != "65534" || field(es[0], "why") != "not-in-group" {
		t.Errorf("api.refused entries = %+v; want one for uid 65534, not-in-group", es)
	}
}

// TestChangeBeforeWatchIsSeen: a config written after the service loaded
// its config but before it began to watch the file is still picked up.
func TestChangeBeforeWatchIsSeen(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "")
	d := &Daemon{opts: Options{ConfigPath: p}, log: slog.New(slog.DiscardHandler)}
	loaded, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := pollEvery
	pollEvery = 50 * time.Millisecond
	defer func() { pollEvery = old }()
	select {
	case <-d.watchConfig(ctx, loaded.SHA256[:]):
	case <-time.After(2 * time.Second):
		t.Fatal("a change made before the watch began was not reported within 2 s")
	}
}

// TestCheckpointSoonAfterEntries: the service signs a checkpoint within
// seconds of recording an entry (here, a config reload), not only on its
// checkpoint_interval timer (set to 24 h here), so that `carrel audit
// verify` never finds unsigned entries for long on a healthy PC.
func TestCheckpointSoonAfterEntries(t *testing.T) {
	old := pollEvery
	pollEvery = 200 * time.Millisecond
	t.Cleanup(func() { pollEvery = old })
	dir := t.TempDir()
	interval := func(s string) string {
		return strings.Replace(s, `checkpoint_interval = "15m"`, `checkpoint_interval = "24h"`, 1)
	}
	p := writeConfig(t, dir, "")
	b, _ := os.ReadFile(p)
	if !bytes.Contains(b, []byte(`checkpoint_interval = "15m"`)) {
		t.Fatal("the example config no longer sets checkpoint_interval = \"15m\"")
	}
	os.WriteFile(p, []byte(interval(string(b))), 0o600)
	start(t, dir, nil)
	l, err := audit.Open(filepath.Join(dir, "data", audit.DBFile), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	before, err := l.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1), 0o600)
	began := time.Now()
	waitFor(t, "a checkpoint covering the reload's entry", time.Minute, func() bool {
		n, err := l.Size(ctx)
		cp, cerr := l.Latest(ctx)
		return err == nil && cerr == nil && n > before && cp.Size == n
	})
	t.Logf("signed %s after the config change", time.Since(began).Round(time.Millisecond))
	if _, err := l.Verify(ctx, audit.VerifyOptions{}); err != nil {
		t.Errorf("audit verify while the service runs: %v", err)
	}
}
