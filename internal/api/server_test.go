package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/booking"
	"github.com/carrel-lib/carrel/internal/testenv"
)

type fixture struct {
	sock        string
	client      *Client
	mu          sync.Mutex
	refused     []Refusal
	lookups     []string // "account found" of each recorded patron look-up
	failLookups bool
}

// serve starts a real server on a real Unix socket over a real register.
func serve(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	// Let other accounts reach the socket file: its own mode must decide.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	store, err := booking.Open(filepath.Join(dir, "bookings.db"), booking.Options{Secret: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sock: filepath.Join(dir, "api.sock")}
	l, auth, err := Listen(f.sock, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{
		Bookings: store,
		PC:       func() string { return "pc-07" },
		Status:   func(ctx context.Context) (Status, error) { return Status{PC: "pc-07", Mode: "bookings-only"}, nil },
		Allow:    auth,
		Refused: func(r Refusal) {
			f.mu.Lock()
			f.refused = append(f.refused, r)
			f.mu.Unlock()
		},
		PatronLookup: func(p Peer, found int) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.failLookups {
				return errors.New("audit log unavailable")
			}
			f.lookups = append(f.lookups, fmt.Sprintf("%s %d", p, found))
			return nil
		},
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
		store.Close()
	})
	f.client = NewClient(f.sock)
	return f
}

func TestBookingRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := serve(t)
	planned := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	b, err := f.client.Start(ctx, StartRequest{Ref: "B-1", Patron: "1234", PlannedEnd: &planned})
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	if b.PC != "pc-07" || b.Ref != "B-1" || !b.HasPatron || b.End != nil || b.PlannedEnd == nil || !b.PlannedEnd.Equal(planned) {
		t.Errorf("Start() = %+v; want open booking B-1 on pc-07 with patron and planned end", b)
	}
	_, err = f.client.Start(ctx, StartRequest{Ref: "B-1"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Errorf("Start(dup) = %v; want 409", err)
	}
	e, err := f.client.End(ctx, "B-1")
	if err != nil || e.End == nil || e.Ended != "ended" {
		t.Errorf("End() = %+v, %v; want ended", e, err)
	}
	_, err = f.client.End(ctx, "nope")
	if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Msg, "no open booking") {
		t.Errorf("End(unknown) = %v; want 404 naming the problem", err)
	}
	list, err := f.client.List(ctx, time.Time{}, time.Time{})
	if err != nil || len(list) != 1 || list[0].Ref != "B-1" {
		t.Errorf("List() = %+v, %v; want [B-1]", list, err)
	}
	st, err := f.client.Status(ctx)
	if err != nil || st.PC != "pc-07" {
		t.Errorf("Status() = %+v, %v", st, err)
	}
}

func TestBadRequests(t *testing.T) {
	f := serve(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", f.sock)
	}}}
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"unknown field", "POST", "/v1/bookings/start", `{"ref":"a","name":"Jens"}`, 400, "unknown field"},
		{"key in capitals", "POST", "/v1/bookings/start", `{"REF":"a"}`, 400, `unknown field "REF"`},
		{"key in mixed case", "POST", "/v1/bookings/start", `{"ref":"a","Patron":"1"}`, 400, `unknown field "Patron"`},
		{"key folded by Unicode", "POST", "/v1/bookings/start", `{"re\u017f":"a"}`, 400, "unknown field"},
		{"duplicate key", "POST", "/v1/bookings/start", `{"ref":"a","ref":"b"}`, 400, `field "ref" appears twice`},
		{"duplicate key end", "POST", "/v1/bookings/end", `{"ref":"a","ref":"zzz"}`, 400, `field "ref" appears twice`},
		{"not an object", "POST", "/v1/bookings/start", `null`, 400, "a JSON object"},
		{"not json", "POST", "/v1/bookings/start", `ref=a`, 400, "bad request"},
		{"two objects", "POST", "/v1/bookings/start", `{"ref":"a"}{"ref":"b"}`, 400, "more than one"},
		{"huge body", "POST", "/v1/bookings/start", `{"ref":"` + strings.Repeat("a", 5000) + `"}`, 400, "larger than"},
		{"bad ref", "POST", "/v1/bookings/start", `{"ref":"a b"}`, 400, "may contain only"},
		{"empty ref", "POST", "/v1/bookings/start", `{}`, 400, "ref is empty"},
		{"planned in past", "POST", "/v1/bookings/start", `{"ref":"a","planned_end":"2000-01-01T00:00:00Z"}`, 400, "not after now"},
		{"planned not a time", "POST", "/v1/bookings/start", `{"ref":"a","planned_end":"tomorrow"}`, 400, "bad request"},
		{"end unknown", "POST", "/v1/bookings/end", `{"ref":"zzz"}`, 404, "no open booking"},
		{"list bad time", "GET", "/v1/bookings?from=yesterday", ``, 400, "RFC 3339"},
		{"list inverted", "GET", "/v1/bookings?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", ``, 400, "after"},
		{"wrong method", "GET", "/v1/bookings/start", ``, 405, ""},
		{"unknown path", "GET", "/v2/x", ``, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://carrel"+tt.path, strings.NewReader(tt.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			msg := string(body)
			var e Error
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				msg = e.Error
			}
			if resp.StatusCode != tt.code || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.msg)
			}
		})
	}
	list, _ := f.client.List(context.Background(), time.Time{}, time.Time{})
	if len(list) != 0 {
		t.Errorf("after bad requests List() = %v; want nothing stored", list)
	}
}

// TestPatronLookup: root finds exactly one card's bookings, and each
// look-up is recorded with what was found; a look-up that cannot be
// recorded returns nothing.
func TestPatronLookup(t *testing.T) {
	ctx := context.Background()
	f := serve(t)
	for _, b := range []StartRequest{{Ref: "c1-a", Patron: "CARD-1"}, {Ref: "c2-a", Patron: "CARD-2"}, {Ref: "none"}, {Ref: "c1-b", Patron: "CARD-1"}} {
		if _, err := f.client.Start(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.client.End(ctx, "c1-a"); err != nil {
		t.Fatal(err)
	}
	bs, err := f.client.ByPatron(ctx, "CARD-1")
	var refs []string
	for _, b := range bs {
		refs = append(refs, b.Ref+"/"+b.Ended)
	}
	if err != nil || strings.Join(refs, " ") != "c1-a/ended c1-b/" {
		t.Errorf("ByPatron(CARD-1) = %v, %v; want c1-a (ended) and c1-b (open)", refs, err)
	}
	if bs, err := f.client.ByPatron(ctx, "CARD-9"); err != nil || len(bs) != 0 || bs == nil {
		t.Errorf("ByPatron(unknown card) = %#v, %v; want an empty list", bs, err)
	}
	var se *StatusError
	if _, err := f.client.ByPatron(ctx, "CARD 1"); !errors.As(err, &se) || se.Code != 400 || strings.Contains(se.Msg, "CARD 1") {
		t.Errorf("ByPatron(card with a space) = %v; want 400 that does not echo the card", err)
	}
	f.mu.Lock()
	got := strings.Join(f.lookups, ", ")
	f.failLookups = true
	f.mu.Unlock()
	if got != "root (uid 0) 2, root (uid 0) 0" {
		t.Errorf("recorded look-ups = %q; want root finding 2, then 0", got)
	}
	if strings.Contains(got, "CARD") {
		t.Errorf("recorded look-ups %q hold the card", got)
	}
	bs, err = f.client.ByPatron(ctx, "CARD-1")
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Msg, "withheld") || bs != nil {
		t.Errorf("ByPatron with the audit log failing = %v, %v; want 500 and nothing returned", bs, err)
	}
}

// TestPatronLookupNeedsAdmin: a booking-client account may book, but not
// look up a patron.
func TestPatronLookupNeedsAdmin(t *testing.T) {
	f := serveLimited(t, 10, 10)
	f.next <- Peer{UID: 1000, GID: 900}
	_, err := NewClient(f.sock).ByPatron(context.Background(), "CARD-1")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 403 || !strings.Contains(se.Msg, "only root/Administrators") {
		t.Errorf("ByPatron as a group member = %v; want 403", err)
	}
	select {
	case r := <-f.refused:
		if r.Why != WhyNotAdmin || r.Peer.UID != 1000 {
			t.Errorf("refusal = %+v; want not-admin of uid 1000", r)
		}
	case <-time.After(30 * time.Second):
		t.Error("the refusal was not reported")
	}
	if n := f.lookups.Load(); n != 0 {
		t.Errorf("%d look-ups recorded for a refused caller", n)
	}
}

func TestNotRunning(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Status(context.Background())
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status() with no service = %v; want ErrNotRunning", err)
	}
}

// TestOtherAccountRefused runs a real client (curl) as nobody. With the
// socket's own mode it cannot connect at all; with the mode opened up by
// hand it reaches the server, which refuses it from the kernel-reported
// identity and reports the refusal.
func TestOtherAccountRefused(t *testing.T) {
	testenv.NeedRoot(t)
	curl := testenv.NeedTool(t, "curl", "setpriv")
	f := serve(t)
	asNobody := func() (string, error) {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			curl, "-sS", "--max-time", "60", "--unix-socket", f.sock,
			"-H", "Content-Type: application/json", "-d", `{"ref":"evil"}`, "http://carrel/v1/bookings/start")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := asNobody()
	if err == nil || !strings.Contains(out, "ermission denied") && !strings.Contains(out, "Couldn't connect") {
		t.Errorf("nobody with the socket's own mode: %q, %v; want connection refused by the file mode", out, err)
	}
	if err := os.Chmod(f.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err = asNobody()
	if err != nil || !strings.Contains(out, "may not use the carrel API") {
		t.Errorf("nobody through an opened socket: %q, %v; want a 403 from the server", out, err)
	}
	f.mu.Lock()
	refused := append([]Refusal(nil), f.refused...)
	f.mu.Unlock()
	if len(refused) != 1 || refused[0].Peer.UID != 65534 || refused[0].Why != "not-in-group" {
		t.Errorf("refusals = %+v; want one for uid 65534 not-in-group", refused)
	}
	list, _ := f.client.List(context.Background(), time.Time{}, time.Time{})
	if len(list) != 0 {
		t.Errorf("List() = %v; want no booking from nobody", list)
	}
}

func TestAuthorizer(t *testing.T) {
	a := &Authorizer{SelfUID: 500, Group: 900, HasGroup: true}
	noGroup := &Authorizer{SelfUID: 500}
	win := &Authorizer{AllowSIDs: []string{"S-1-5-18", "S-1-5-32-544", "S-1-5-21-9-1001"}}
	tests := []struct {
		a    *Authorizer
		p    Peer
		want string
	}{
		{a, Peer{UID: 0}, ""},
		{a, Peer{UID: 500}, ""},
		{a, Peer{UID: 1000, GID: 900}, ""},
		{a, Peer{UID: 1000, GID: 100, Groups: []uint32{4, 900}}, ""},
		{a, Peer{UID: 1000, GID: 100, Groups: []uint32{4}}, "not-in-group"},
		{noGroup, Peer{UID: 1000, GID: 0, Groups: []uint32{0}}, "not-in-group"},
		{nil, Peer{UID: 0}, "no-policy"},
		{win, Peer{SID: "S-1-5-21-1-1000", SIDs: []string{"S-1-5-32-545", "S-1-5-21-9-1001"}}, ""},
		{win, Peer{SID: "S-1-5-21-1-1000", SIDs: []string{"S-1-5-32-545"}}, "not-in-group"},
		{win, Peer{SID: "S-1-5-18"}, ""},
	}
	for i, tt := range tests {
		if got := tt.a.Check(tt.p); got != tt.want {
			t.Errorf("%d: Check(%v) = %q; want %q", i, tt.p, got, tt.want)
		}
	}
}

func TestAdmin(t *testing.T) {
	a := &Authorizer{SelfUID: 500, Group: 900, HasGroup: true}
	win := &Authorizer{AllowSIDs: []string{"S-1-5-18", "S-1-5-32-544", "S-1-5-21-9-1001"}}
	tests := []struct {
		a    *Authorizer
		p    Peer
		want bool
	}{
		{a, Peer{UID: 0}, true},
		{a, Peer{UID: 500}, true},
		{a, Peer{UID: 1000, GID: 900}, false},
		{a, Peer{UID: 1000, GID: 0, Groups: []uint32{0}}, false}, // group root is not root
		{nil, Peer{UID: 0}, false},
		{win, Peer{SID: "S-1-5-18"}, true},
		{win, Peer{SID: "S-1-5-21-1-1000", SIDs: []string{"S-1-5-32-544"}}, true},
		{win, Peer{SID: "S-1-5-21-1-1000", SIDs: []string{"S-1-5-32-545", "S-1-5-21-9-1001"}}, false},
		{win, Peer{SID: "S-1-5-21-1-1000", UID: 0}, false}, // no uid on Windows
	}
	for i, tt := range tests {
		if got := tt.a.Admin(tt.p); got != tt.want {
			t.Errorf("%d: Admin(%v) = %v; want %v", i, tt.p, got, tt.want)
		}
	}
}

func TestListenRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "api.sock")
	os.WriteFile(p, []byte("precious"), 0o600)
	if _, _, err := Listen(p, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen(over a regular file) = %v; want refusal", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "precious" {
		t.Error("Listen deleted a file that was not a socket")
	}
	// A live socket is not stolen.
	f := serve(t)
	if _, _, err := Listen(f.sock, ""); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("Listen(live socket) = %v; want refusal", err)
	}
	// The socket is created 0660.
	fi, err := os.Stat(f.sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, %v; want 0660", fi.Mode().Perm(), err)
	}
}

// FuzzDecodeStart: a body is accepted only if it is one JSON object whose
// every key is exactly a known field, given once; what is accepted survives
// a round trip; and an accepted body with a key in other case or given twice
// is refused.
func FuzzDecodeStart(f *testing.F) {
	for _, seed := range []string{`{"ref":"a"}`, `{"ref":"B-1","patron":"1234","planned_end":"2026-11-22T10:00:00Z"}`,
		`{}`, `null`, `[]`, `{"ref":1}`, `{"ref":"a"} x`, `{"ref":"a","ref":"b"}`, "\xff",
		`{"REF":"a"}`, `{"Ref":"a","patron":"1"}`, `{"r\u0065f":"a"}`, `{"re\u017f":"a"}`, `{"ref":"a","patron":"1","patron":"1"}`,
		`{"ref":"a","planned_end":null,"planned_end":"2026-11-22T10:00:00Z"}`, `{"ref":{"ref":"a","ref":"b"}}`,
		`{"ref":"a","PLANNED_END":"2026-11-22T10:00:00Z"}`, `{"ref\u0000":"a"}`, `{"ref":"a",}`} {
		f.Add([]byte(seed))
	}
	known := []string{"ref", "patron", "planned_end"}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeStart(body)
		if len(body) > MaxBody && err == nil {
			t.Fatalf("DecodeStart accepted %d bytes", len(body))
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeStart error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		keys, ok := topLevelKeys(body)
		if !ok {
			t.Fatalf("DecodeStart accepted %q, which is not one JSON object", body)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if !slices.Contains(known, k) || seen[k] {
				t.Fatalf("DecodeStart accepted %q with key %q (keys %q)", body, k, keys)
			}
			seen[k] = true
		}
		// What decodes must survive a round trip unchanged.
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeStart(again)
		if err != nil || r2.Ref != r.Ref || r2.Patron != r.Patron || (r.PlannedEnd == nil) != (r2.PlannedEnd == nil) ||
			r.PlannedEnd != nil && !r.PlannedEnd.Equal(*r2.PlannedEnd) {
			t.Fatalf("round trip %q -> %q: %+v vs %+v (%v)", body, again, r, r2, err)
		}
		// The same request with its first key in capitals, or given twice,
		// is refused.
		if k, _, found := bytes.Cut(again[1:], []byte(":")); found {
			upper := append([]byte("{"), bytes.ToUpper(k)...)
			upper = append(upper, again[1+len(k):]...)
			if _, err := DecodeStart(upper); err == nil {
				t.Fatalf("DecodeStart accepted %q", upper)
			}
			twice := append([]byte("{"), again[1:len(again)-1]...)
			twice = append(append(twice, ','), again[1:]...)
			if _, err := DecodeStart(twice); err == nil {
				t.Fatalf("DecodeStart accepted %q", twice)
			}
		}
	})
}

// topLevelKeys lists the keys of body's outer object, as written, walking
// every token (a different walk from checkKeys, which skips values whole).
// ok is false unless body is exactly one object.
func topLevelKeys(body []byte) (keys []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	depth := 0
	wantKey := false
	for i := 0; ; i++ {
		tok, err := dec.Token()
		if err == io.EOF {
			return keys, depth == 0 && i > 0
		}
		if err != nil {
			return nil, false
		}
		if i == 0 && tok != json.Delim('{') {
			return nil, false
		}
		if i > 0 && depth == 0 {
			return nil, false // a second value
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			wantKey = depth == 1
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			wantKey = depth == 1
			continue
		}
		if depth == 1 && wantKey {
			keys = append(keys, tok.(string))
			wantKey = false
		} else if depth == 1 {
			wantKey = true
		}
	}
}

func FuzzDecodeEnd(f *testing.F) {
	for _, seed := range []string{`{"ref":"a"}`, `{"ref":""}`, `{"x":1}`, `  {"ref":"a"}  `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeEnd(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeEnd error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if len(r.Ref) > MaxBody {
			t.Fatalf("ref longer than the body limit")
		}
	})
}
