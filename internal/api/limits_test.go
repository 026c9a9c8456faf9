package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/booking"
)

// limitFixture serves the API on a real socket; each connection is taken
// to come from the account the test named for it (next), so that limits
// for other accounts can be tried without other accounts.
type limitFixture struct {
	sock     string
	next     chan Peer
	refused  chan Refusal
	lookups  atomic.Int64
	shutdown func()
}

func serveLimited(t *testing.T, perPeer, total int) *limitFixture {
	t.Helper()
	dir := t.TempDir()
	store, err := booking.Open(filepath.Join(dir, "bookings.db"), booking.Options{Secret: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	f := &limitFixture{sock: filepath.Join(dir, "api.sock"), next: make(chan Peer, 1), refused: make(chan Refusal, 100)}
	l, _, err := Listen(f.sock, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{
		Bookings:        store,
		PC:              func() string { return "pc-07" },
		Status:          func(ctx context.Context) (Status, error) { return Status{PC: "pc-07"}, nil },
		Allow:           &Authorizer{SelfUID: 500, Group: 900, HasGroup: true},
		Refused:         func(r Refusal) { f.refused <- r },
		PatronLookup:    func(Peer, int) error { f.lookups.Add(1); return nil },
		MaxConns:        total,
		MaxConnsPerPeer: perPeer,
		RefusalWindow:   time.Hour, // counts are seen at Shutdown
	})
	srv.identify = func(net.Conn) (Peer, error) { return <-f.next, nil }
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	var once sync.Once
	f.shutdown = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			<-done
			store.Close()
		})
	}
	t.Cleanup(f.shutdown)
	return f
}

// call opens a connection as p, sends one keep-alive request and returns
// the connection (still open) with the status and body of the answer.
func (f *limitFixture) call(t *testing.T, p Peer) (net.Conn, int, string) {
	t.Helper()
	c, err := net.Dial("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.next <- p
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: carrel\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return c, resp.StatusCode, string(body)
}

func TestConnectionLimits(t *testing.T) {
	f := serveLimited(t, 2, 3)
	member := Peer{UID: 1000, GID: 900}
	other := Peer{UID: 1001, GID: 900}
	root := Peer{UID: 0}

	held, code, _ := f.call(t, member)
	if code != 200 {
		t.Fatalf("first connection of a member = %d; want 200", code)
	}
	if _, code, _ := f.call(t, member); code != 200 {
		t.Fatalf("second connection of a member = %d; want 200", code)
	}
	_, code, body := f.call(t, member)
	if code != 503 || !strings.Contains(body, "too many connections from account uid 1000") || !strings.Contains(body, "limit of 2") {
		t.Errorf("third connection of a member = %d %s; want 503 naming the account and the limit", code, body)
	}
	// carrel's own client reports the refusal as what it is.
	f.next <- member
	_, err := NewClient(f.sock).Status(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 503 || !strings.Contains(se.Msg, "too many connections") {
		t.Errorf("Client.Status() past the limit = %v; want a 503 StatusError", err)
	}
	if _, code, _ := f.call(t, other); code != 200 {
		t.Errorf("another member's first connection = %d; want 200 (the limit is per account)", code)
	}
	_, code, body = f.call(t, other)
	if code != 503 || !strings.Contains(body, "limit of 3 connections") {
		t.Errorf("a connection past the total = %d %s; want 503 saying the service is at its limit", code, body)
	}
	// Administrators are held only to the per-account limit.
	for i := 0; i < 2; i++ {
		if _, code, _ := f.call(t, root); code != 200 {
			t.Errorf("root's connection %d with the total reached = %d; want 200", i+1, code)
		}
	}
	if _, code, _ := f.call(t, root); code != 503 {
		t.Errorf("root's third connection = %d; want 503", code)
	}
	// A closed connection frees its place.
	held.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, code, _ := f.call(t, other)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a member's closed connection did not free its place")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Each account and reason is reported at once, the first time.
	want := map[string]bool{"uid:1000 too-many-connections": true, "uid:1001 busy": true, "uid:0 too-many-connections": true}
	for len(want) > 0 {
		select {
		case r := <-f.refused:
			k := r.Peer.key() + " " + r.Why
			if !want[k] || r.Count != 1 {
				t.Errorf("refusal %s count %d; want one each of %v", k, r.Count, want)
			}
			delete(want, k)
		case <-time.After(30 * time.Second):
			t.Fatalf("refusals not reported: %v", want)
		}
	}
}

// TestRefusalFloodIsCounted: a thousand refused connections of one account
// are reported twice, not a thousand times: at once, and with their count.
func TestRefusalFloodIsCounted(t *testing.T) {
	f := serveLimited(t, 1, 10)
	member := Peer{UID: 1000, GID: 900}
	if _, code, _ := f.call(t, member); code != 200 {
		t.Fatalf("first connection = %d", code)
	}
	const flood = 1000
	for i := 0; i < flood; i++ {
		c, code, _ := f.call(t, member)
		c.Close()
		if code != 503 {
			t.Fatalf("connection %d past the limit = %d; want 503", i, code)
		}
	}
	first := <-f.refused
	if first.Count != 1 || first.Why != WhyTooManyConnections || first.Peer.UID != 1000 {
		t.Errorf("first report = %+v; want one too-many-connections of uid 1000", first)
	}
	select {
	case r := <-f.refused:
		t.Fatalf("a second report within the window: %+v", r)
	default:
	}
	// Shutdown reports what the window counted.
	f.shutdown()
	select {
	case r := <-f.refused:
		if r.Count != flood-1 {
			t.Errorf("report at shutdown = %+v; want count %d", r, flood-1)
		}
	default:
		t.Error("no report of the counted refusals at shutdown")
	}
}

// TestRefusalGateWindows drives the windows by hand: the first refusal is
// reported at once, a window's refusals with their count, a quiet window
// ends the entry, and close reports what is left.
func TestRefusalGateWindows(t *testing.T) {
	var got []string
	g := &refusalGate{window: time.Hour, pending: map[string]*pendingRefusals{}, report: func(r Refusal) {
		got = append(got, fmt.Sprintf("%s %d", r.Why, r.Count))
	}}
	p := Peer{UID: 7}
	key := p.key() + "\x00a"
	g.add(Refusal{Peer: p, Why: "a"})
	g.add(Refusal{Peer: p, Why: "b"})
	for i := 0; i < 5; i++ {
		g.add(Refusal{Peer: p, Why: "a"})
	}
	g.flush(key) // the window ends with a count
	g.flush(key) // a quiet window ends the entry
	if _, ok := g.pending[key]; ok {
		t.Error("a quiet window did not end the entry")
	}
	g.add(Refusal{Peer: p, Why: "a"}) // afresh
	g.add(Refusal{Peer: p, Why: "a"})
	g.add(Refusal{Peer: p, Why: "a"})
	g.close() // reports the 2 counted so far
	g.add(Refusal{Peer: p, Why: "a"})
	if strings.Join(got, ",") != "a 1,b 1,a 5,a 1,a 2" {
		t.Errorf("reports = %v; want [a 1, b 1, a 5, a 1, a 2]", got)
	}
}

// TestRefusalGateTimer: the window's end comes by itself.
func TestRefusalGateTimer(t *testing.T) {
	reports := make(chan Refusal, 10)
	g := &refusalGate{window: 10 * time.Millisecond, pending: map[string]*pendingRefusals{}, report: func(r Refusal) { reports <- r }}
	defer g.close()
	p := Peer{UID: 7}
	g.add(Refusal{Peer: p, Why: "a"})
	g.add(Refusal{Peer: p, Why: "a"})
	for _, want := range []int{1, 1} {
		select {
		case r := <-reports:
			if r.Count != want {
				t.Errorf("report %+v; want count %d", r, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the window did not end")
		}
	}
}
