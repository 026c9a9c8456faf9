//go:build linux

package witness

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/witness/witnesstest"
)

// startRelay runs a relay on a socket in a temporary folder until the test
// ends.
func startRelay(t *testing.T, r *Relay) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "relay.sock")
	l, err := ListenRelay(sock)
	if err != nil {
		t.Fatal(err)
	}
	if r.Log == nil {
		r.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return sock
}

// The service pushes through the relay exactly as it does directly.
func TestPushThroughRelay(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	allowed, err := Resolve(context.Background(), []string{w.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sock := startRelay(t, &Relay{Allowed: allowed})
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("relay socket mode = %v, %v; want 0600 (root only)", st.Mode(), err)
	}
	l := openLog(t, t.TempDir())
	w.AddLog(origin, l.Verifier())
	cp := grow(t, l, 4, "relayed")
	k, _ := audit.ParseWitnessKey(w.Key)
	results := make(chan Result, 10)
	p := New(Options{Log: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Dial: DialRelay(sock),
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }, Poll: time.Hour, Result: func(r Result) { results <- r }})
	p.SetTargets([]Target{{Name: "w1", URL: w.URL, Key: k}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() {
		cancel()
		for {
			select {
			case <-done:
				return
			case <-results:
			}
		}
	}()
	await(t, results, "the cosignature through the relay", cosigned(cp.Size))
}

// The relay connects to the witnesses it was started with and to nothing
// else; a witness added to the config since makes it restart.
func TestRelayRefusesOtherDestinations(t *testing.T) {
	w := witnesstest.Start(t, witnesstest.Options{})
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	allowed, err := Resolve(context.Background(), []string{w.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	added := "https://" + other.Addr().String()
	var restarted atomic.Bool
	sock := startRelay(t, &Relay{Allowed: allowed,
		Configured: func() ([]string, error) { return []string{w.URL, added}, nil },
		Restart:    func() { restarted.Store(true) }})
	dial := DialRelay(sock)
	ctx := context.Background()

	c, err := dial(ctx, "tcp", w.Addr)
	if err != nil {
		t.Fatalf("the witness through the relay: %v", err)
	}
	c.Close()
	for _, dest := range []string{"127.0.0.1:22", "example.com:443", "[::1]:" + strings.Split(w.Addr, ":")[1]} {
		if _, err := dial(ctx, "tcp", dest); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s through the relay: %v; want 403", dest, err)
		}
	}
	if restarted.Load() {
		t.Fatalf("the relay restarted for a destination the config does not list")
	}
	// A witness the config lists now but the relay was not started with.
	if _, err := dial(ctx, "tcp", other.Addr().String()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a newly configured witness: %v; want 503", err)
	}
	if !restarted.Load() {
		t.Errorf("the relay did not ask to restart for a newly configured witness")
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the relay connected to a destination it was not started with (%d times)", n)
	}
}

// Garbage on the socket gets an error, not a connection; a slow client
// is cut off.
func TestRelayBadRequests(t *testing.T) {
	sock := startRelay(t, &Relay{DialTimeout: 500 * time.Millisecond})
	for _, req := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT\r\n\r\n", strings.Repeat("A", 10000)} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		c.SetReadDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 400") {
			t.Errorf("%.20q: answer %q; want 400", req, b)
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("CONNECT 127.0.0.1:1 HTTP/1.1\r\n")) // and never the rest
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("a client that stalls is not cut off: %v", err)
	}
}

func TestAllowedRoundTrip(t *testing.T) {
	as, err := Resolve(context.Background(), []string{"https://127.0.0.1:8443/w", "http://[::1]:7380", "https://localhost", "https://127.0.0.1:8443"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("Resolve = %+v; want three destinations", as)
	}
	path := filepath.Join(t.TempDir(), "allowed.json")
	if err := WriteAllowed(path, as); err != nil {
		t.Fatal(err)
	}
	back, err := ReadAllowed(path)
	if err != nil || len(back) != 3 {
		t.Fatalf("ReadAllowed = %+v, %v", back, err)
	}
	got := strings.Join(Prefixes(back), " ")
	if !strings.Contains(got, "127.0.0.1/32") || !strings.Contains(got, "::1/128") {
		t.Errorf("Prefixes = %s", got)
	}
	os.WriteFile(path, []byte(`[{"host_port": "w:443", "addrs": ["not-an-ip"]}]`), 0o600)
	if _, err := ReadAllowed(path); err == nil {
		t.Errorf("ReadAllowed took a name for an address")
	}
}
