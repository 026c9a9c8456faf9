package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
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
	log          *testenv.Buffer
}

// status asks the running daemon for its status.
func (h *harness) status(t *testing.T) api.Status {
	t.Helper()
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
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
	return startWith(t, dir, filepath.Join(dir, "carrel.toml"), now)
}

// startWith runs the daemon on the config at cfgPath; dir holds the data
// folder.
func startWith(t *testing.T, dir, cfgPath string, now func() time.Time) *harness {
	t.Helper()
	h := &harness{dir: dir, cfgPath: cfgPath, done: make(chan error, 1), log: &testenv.Buffer{}}
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
	case <-time.After(hangGuard):
		t.Fatalf("not ready after %s\n%s", hangGuard, h.log)
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

// hangGuard bounds every wait for an event: long enough that a loaded CI
// machine never reaches it, so that only a broken mechanism fails.
const hangGuard = time.Minute

// fastPolls makes the config poll and settle short, so that a test sees
// many looks quickly; it restores them at the end of t.
func fastPolls(t *testing.T) {
	oldPoll, oldSettle := pollEvery, settle
	pollEvery, settle = 20*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { pollEvery, settle = oldPoll, oldSettle })
}

// loads counts the service's readings of its config file, and lets a test
// fail them.
type loads struct {
	mu   sync.Mutex
	n    int
	fail error // returned instead of reading, when set
}

func countLoads(t *testing.T) *loads {
	l := &loads{}
	old := loadConfig
	loadConfig = func(p string) (*config.Config, error) {
		l.mu.Lock()
		l.n++
		fail := l.fail
		l.mu.Unlock()
		if fail != nil {
			return nil, fail
		}
		return old(p)
	}
	t.Cleanup(func() { loadConfig = old })
	return l
}

func (l *loads) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *loads) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

// waitLooks waits until the service has read its config k more times.
func (l *loads) waitLooks(t *testing.T, k int) {
	t.Helper()
	n := l.count()
	waitFor(t, fmt.Sprintf("%d more readings of the config", k), hangGuard, func() bool { return l.count() >= n+k })
}

// replaceConfig writes doc to p by rename, as deployment tools do, so that
// the service never sees it half-written.
func replaceConfig(t *testing.T, p string, doc []byte) {
	t.Helper()
	replaceConfigMode(t, p, doc, 0o600)
}

// replaceConfigMode is replaceConfig for a file of the given mode, which
// it has from the moment it takes the name.
func replaceConfigMode(t *testing.T, p string, doc []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p+".tmp", doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p+".tmp", mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

func TestConfigReload(t *testing.T) {
	fastPolls(t)
	looks := countLoads(t)
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	status := func() api.Status { return h.status(t) }
	p := h.cfgPath
	orig, _ := os.ReadFile(p)
	edit := func(from, to string) []byte { return bytes.Replace(orig, []byte(from), []byte(to), 1) }

	// A valid change is put in force (promised within two seconds; logged,
	// and failed only far beyond, so that a loaded machine cannot fail it).
	began := time.Now()
	replaceConfig(t, p, edit(`retention = "28d"`, `retention = "14d"`))
	waitFor(t, "new retention in force", hangGuard, func() bool { return status().Retention == "14d" })
	t.Logf("a valid change was in force %s after it was written", time.Since(began).Round(time.Millisecond))
	acc := entries(t, dir, audit.ConfigAccepted)
	if len(acc) != 2 || field(acc[1], "source") != "reload" {
		t.Errorf("config.accepted entries = %d (last source %q); want 2, the last a reload", len(acc), field(acc[len(acc)-1], "source"))
	}

	// An invalid file is refused; the last good config stays in force.
	bad := append(edit(`retention = "28d"`, `retention = "0d"`), "\n[capture]\nmax_case_days = 120\n"...) // a duplicate table: a syntax-level error too
	replaceConfig(t, p, bad)
	waitFor(t, "refusal shown in status", hangGuard, func() bool { return status().ConfigRejected != "" })
	if st := status(); st.Retention != "14d" {
		t.Errorf("retention after a refused config = %s; want 14d still in force", st.Retention)
	}
	// The same broken file read again and again is audited once.
	looks.waitLooks(t, 10)
	if n := len(entries(t, dir, audit.ConfigRejected)); n != 1 {
		t.Errorf("config.rejected entries after 10 more readings of the same file = %d; want 1", n)
	}

	// Valid content, but writable by others: refused as well.
	replaceConfigMode(t, p, edit(`retention = "28d"`, `retention = "7d"`), 0o666)
	waitFor(t, "permission refusal", hangGuard, func() bool {
		return strings.Contains(status().ConfigRejected, "writable by group or others")
	})
	if st := status(); st.Retention != "14d" {
		t.Errorf("retention after an unsafe config = %s; want 14d", st.Retention)
	}
	rej := entries(t, dir, audit.ConfigRejected)
	if len(rej) != 2 || !strings.Contains(field(rej[1], "problems"), "permissions of") {
		t.Errorf("config.rejected = %+v; want a second one, about permissions", rej)
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
	// Fixed with no change to the content: taken up at the next poll.
	os.Chmod(p, 0o600)
	waitFor(t, "fixed config in force", hangGuard, func() bool {
		st := status()
		return st.Retention == "7d" && st.ConfigRejected == ""
	})
}

// TestReloadAfterFolderFixed: a config refused because its folder was 0777
// is taken up once the folder is fixed, though the file never changes
// again; the refused edit (here one that ends a case) then takes effect.
func TestReloadAfterFolderFixed(t *testing.T) {
	fastPolls(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pending := fmt.Sprintf(`
[[case]]
id = "fix-1"
reason = "identified misuse"
category = "abuse-of-service"
declared_by = "Anne"
approved_by = "Bo"
notice_posted_at = %s
start = %s
end = %s
pcs = ["*"]
`, now.UTC().Format(time.RFC3339), now.Add(24*time.Hour).UTC().Format(time.RFC3339), now.Add(48*time.Hour).UTC().Format(time.RFC3339))
	doc, _ := os.ReadFile(writeConfig(t, dir, pending))
	doc = bytes.Replace(doc, []byte("recipients = []"), []byte(`recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]`), 1)
	os.Remove(filepath.Join(dir, "carrel.toml"))
	p := filepath.Join(etc, "carrel.toml")
	replaceConfig(t, p, doc)
	h := startWith(t, dir, p, nil)
	caseState := func() string {
		st, err := h.client.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Capture.Cases {
			if c.ID == "fix-1" {
				return c.State
			}
		}
		return fmt.Sprintf("%+v", st.Capture)
	}
	waitFor(t, "the case judged pending at start", hangGuard, func() bool { return caseState() == "pending" })

	os.Chmod(etc, 0o777)
	replaceConfig(t, p, append(doc, fmt.Sprintf("ended_at = %s\nended_by = \"Anne\"\n", now.UTC().Format(time.RFC3339))...))
	waitFor(t, "refusal of the config in a 0777 folder", hangGuard, func() bool {
		st, _ := h.client.Status(context.Background())
		return strings.Contains(st.ConfigRejected, etc+": writable by group or others (mode 0777)")
	})
	if s := caseState(); s != "pending" {
		t.Errorf("case state while the edit is refused = %q; want still pending", s)
	}

	os.Chmod(etc, 0o755) // the file is not touched again
	waitFor(t, "the refused edit in force once the folder is fixed", hangGuard, func() bool { return caseState() == "ended" })
	if st, _ := h.client.Status(context.Background()); st.ConfigRejected != "" {
		t.Errorf("status still shows a refusal: %q", st.ConfigRejected)
	}
}

// TestUnreadableConfigIsNotRefused: a config file that cannot be read (the
// service out of file descriptors) is no refused config: nothing is
// audited, status shows no refusal, the config in force stays, and the file
// is read again at the next poll.
func TestUnreadableConfigIsNotRefused(t *testing.T) {
	fastPolls(t)
	looks := countLoads(t)
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	looks.setFail(&fs.PathError{Op: "open", Path: h.cfgPath, Err: syscall.EMFILE})
	looks.waitLooks(t, 10)
	b, _ := os.ReadFile(h.cfgPath)
	replaceConfig(t, h.cfgPath, bytes.Replace(b, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1))
	looks.waitLooks(t, 10)
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ConfigRejected != "" || st.Retention != "28d" {
		t.Errorf("status while the file cannot be read = refused %q, retention %s; want no refusal, 28d", st.ConfigRejected, st.Retention)
	}
	if n := len(entries(t, dir, audit.ConfigRejected)); n != 0 {
		t.Errorf("config.rejected entries for a file that could not be read = %d; want 0", n)
	}
	if n := strings.Count(h.log.String(), "cannot read the config file"); n != 1 {
		t.Errorf("the log says %d times that the file cannot be read; want once:\n%s", n, h.log)
	}
	looks.setFail(nil)
	waitFor(t, "the change read once the file can be read", hangGuard, func() bool {
		st, _ := h.client.Status(context.Background())
		return st.Retention == "14d"
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
		}, "unsafe permissions: DIR/data: writable by group or others (mode 0777)"},
		// The data folder reached through a link in a folder others can
		// write: they could point it elsewhere.
		{"data folder through a link in an open folder", func(t *testing.T, dir string) {
			p := writeConfig(t, dir, "")
			os.Mkdir(filepath.Join(dir, "real"), 0o700)
			os.Mkdir(filepath.Join(dir, "open"), 0o700)
			os.Chmod(filepath.Join(dir, "open"), 0o777)
			os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "open", "data"))
			b, _ := os.ReadFile(p)
			b = bytes.Replace(b, []byte("data_dir = '"+filepath.Join(dir, "data")+"'"), []byte("data_dir = '"+filepath.Join(dir, "open", "data")+"'"), 1)
			os.WriteFile(p, b, 0o600)
		}, "storage.data_dir: unsafe permissions: DIR/open: writable by group or others (mode 0777)"},
		// The API socket in a folder every account can write, sticky like
		// /tmp or not: another account could take its name first.
		{"socket in a sticky world-writable folder", func(t *testing.T, dir string) {
			p := writeConfig(t, dir, "")
			os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
			os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky)
			b, _ := os.ReadFile(p)
			b = bytes.Replace(b, []byte(filepath.Join(dir, "data", "api.sock")), []byte(filepath.Join(dir, "tmp", "api.sock")), 1)
			os.WriteFile(p, b, 0o600)
		}, "booking.api_socket: unsafe permissions: DIR/tmp: writable by group or others (mode 1777); another account could take the API socket's name first"},
		{"config through a link in an open folder", func(t *testing.T, dir string) {
			p := writeConfig(t, dir, "")
			os.Mkdir(filepath.Join(dir, "open"), 0o700)
			os.Chmod(filepath.Join(dir, "open"), 0o777)
			os.Rename(p, filepath.Join(dir, "real.toml"))
			os.Symlink(filepath.Join(dir, "real.toml"), filepath.Join(dir, "open", "carrel.toml"))
			os.Symlink(filepath.Join(dir, "open", "carrel.toml"), p)
		}, "DIR/open: writable by group or others (mode 0777)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			err := Run(context.Background(), Options{ConfigPath: filepath.Join(dir, "carrel.toml"), Log: slog.New(slog.DiscardHandler)})
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Run() = %v; want a refusal mentioning %q", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data", audit.DBFile)); err == nil {
				t.Errorf("Run() refused, yet opened an audit log")
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
	fastPolls(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, "")
	b, _ := os.ReadFile(p)
	old := loadConfig
	var once sync.Once
	loadConfig = func(path string) (*config.Config, error) {
		c, err := old(path)
		// Right after the service's first reading, before any watch.
		once.Do(func() {
			os.WriteFile(p+".tmp", bytes.Replace(b, []byte(`retention = "28d"`), []byte(`retention = "14d"`), 1), 0o600)
			if err := os.Rename(p+".tmp", p); err != nil {
				t.Error(err) // not Fatal: this runs on the service's goroutine
			}
		})
		return c, err
	}
	t.Cleanup(func() { loadConfig = old })
	h := start(t, dir, nil)
	waitFor(t, "the change made before the watch began", hangGuard, func() bool {
		st, _ := h.client.Status(context.Background())
		return st.Retention == "14d"
	})
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

// TestConfigLinkSwapAttack: the service's --config is a link in a folder
// that an unprivileged account owns. That account swaps the link, in a
// tight loop, between the real config and its own file, which declares a
// case. The service refuses the path outright, naming the folder, at start
// and at every reading while it runs; the account's case is never put in
// force and capture never starts.
func TestConfigLinkSwapAttack(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "setpriv")
	fastPolls(t)
	looks := countLoads(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	real := writeConfig(t, dir, "")
	// The account's own folder, with its own config declaring a case.
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	good, _ := os.ReadFile(real)
	now := time.Now().UTC()
	evil := append(append([]byte(nil), good...), fmt.Sprintf(`
[[case]]
id = "evil"
reason = "r"
category = "other"
declared_by = "Mallory"
approved_by = "Eve"
notice_posted_at = %s
start = %s
end = %s
pcs = ["*"]
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))...)
	evil = bytes.Replace(evil, []byte("recipients = []"), []byte(`recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]`), 1)
	os.WriteFile(filepath.Join(home, "evil.toml"), evil, 0o644)
	link := filepath.Join(home, "carrel.toml")
	os.Symlink(real, link)
	for _, p := range []string{home, filepath.Join(home, "evil.toml"), link} {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	// Refused outright at start, naming the folder.
	err := Run(context.Background(), Options{ConfigPath: link, Log: slog.New(slog.DiscardHandler)})
	if want := home + ": owned by uid 65534"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run(--config %s) = %v; want a refusal naming %s", link, err, want)
	}

	// While it runs: the folder given to the account after the start (a
	// careless chown), and the account swapping the link as fast as it can.
	os.Lchown(home, 0, 0)
	os.Lchown(link, 0, 0)
	h := startWith(t, dir, link, nil)
	os.Lchown(home, 65534, 65534)
	os.Lchown(link, 65534, 65534)
	swap := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
		`cd "$1" && while :; do ln -sfn evil.toml l.new && mv -T l.new carrel.toml; ln -sfn "$2" l.new && mv -T l.new carrel.toml; done`,
		"swap", home, real)
	if err := swap.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { swap.Process.Kill(); swap.Wait() }()
	waitFor(t, "the refusal naming the folder", hangGuard, func() bool {
		st, _ := h.client.Status(context.Background())
		return strings.Contains(st.ConfigRejected, home+": owned by uid 65534")
	})
	looks.waitLooks(t, 200)
	swap.Process.Kill()
	swap.Wait()
	for _, e := range entries(t, dir, audit.ConfigAccepted) {
		if field(e, "source") != "start" {
			t.Errorf("config accepted while the link was being swapped: %+v", e)
		}
	}
	if n := len(entries(t, dir, audit.CaptureStart)); n != 0 {
		t.Errorf("capture.start entries = %d; want 0", n)
	}
	st, _ := h.client.Status(context.Background())
	if st.Mode != "bookings-only" || st.Capture == nil || st.Capture.On || len(st.Capture.Cases) != 0 {
		t.Errorf("status = %s %+v; want bookings-only and no case", st.Mode, st.Capture)
	}
}

// TestLogNamesDataFolder: files are opened through the held data folder
// (/proc/self/fd/N), but the service log names the folder itself.
func TestLogNamesDataFolder(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "")
	h := start(t, dir, nil)
	h.stop(t)
	log := h.log.String()
	if !strings.Contains(log, "data="+filepath.Join(dir, "data")) || strings.Contains(log, "/proc/self/fd") {
		t.Errorf("service log does not name the data folder, or names the descriptor:\n%s", log)
	}
}
