package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "carrel/pc-01"

// clock is a deterministic Options.Now: each call is one second after the
// last, from 2026-03-01 09:00 UTC.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// testLog opens a new writable log in a temporary folder.
func testLog(t testing.TB) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(filepath.Join(dir, "audit.db"), Options{
		Origin: testOrigin, KeyPath: filepath.Join(dir, "audit.key"), Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

func reopen(t testing.TB, dir string, readOnly bool) *Log {
	t.Helper()
	l, err := Open(filepath.Join(dir, "audit.db"), Options{
		Origin: testOrigin, KeyPath: filepath.Join(dir, "audit.key"), Now: newClock().Now, ReadOnly: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// sampleEvent returns the i'th of a varied set of valid events, covering
// every field type and a text with characters that need escaping.
func sampleEvent(i int) Event {
	sum := sha256.Sum256(fmt.Appendf(nil, "config %d", i))
	at := time.Date(2026, 2, 1, 0, 0, i, 0, time.UTC)
	switch i % 5 {
	case 0:
		return Event{Kind: ServiceStart, Actor: "service", Fields: []Field{
			Token("version", "1.0.0"), Hash("config_sha256", sum[:]), Int("pid", int64(1000+i))}}
	case 1:
		return Event{Kind: ConfigRejected, Actor: "service", Fields: []Field{
			Hash("sha256", sum[:]), Text("problems", fmt.Sprintf("pc.id: empty\nversion: \\ %d\x01 «ø»", i)), Int("count", 2)}}
	case 2:
		return Event{Kind: BookingRetention, Actor: "retention", Fields: []Field{
			Int("deleted", int64(i)), Time("from", at), Time("to", at.Add(time.Hour)), Time("cutoff", at.Add(2*time.Hour))}}
	case 3:
		return Event{Kind: CaptureStart, Actor: "uid:0", Fields: []Field{
			Token("case", "2026-03"), Token("mode", "metadata"), Token("interface", "eth0")}}
	default:
		return Event{Kind: APIRefused, Actor: "api", Fields: []Field{
			Token("account", "guest"), Int("uid", -1), Token("why", "not-in-group")}}
	}
}

// fill records n sample events and signs a checkpoint every `every` entries
// (never when every is 0).
func fill(t testing.TB, l *Log, n, every int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := l.Record(ctx, sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
		if every > 0 && (i+1)%every == 0 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// verifyErr runs Verify and returns its *VerifyError, failing the test if
// Verify passed or failed for another reason.
func verifyErr(t testing.TB, l *Log, opts VerifyOptions) *VerifyError {
	t.Helper()
	rep, err := l.Verify(context.Background(), opts)
	if err == nil {
		t.Fatalf("Verify passed (%s); want it to fail", rep)
	}
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify = %v (%T); want a *VerifyError", err, err)
	}
	return ve
}

func mustVerify(t testing.TB, l *Log, opts VerifyOptions) Report {
	t.Helper()
	rep, err := l.Verify(context.Background(), opts)
	if err != nil {
		t.Fatalf("Verify = %v; want it to pass", err)
	}
	return rep
}

// fixedKey returns a signer and verifier key for name from a fixed seed, so
// that signatures in golden tests never change (Ed25519 is deterministic).
func fixedKey(t testing.TB, name string, seedByte byte) (note.Signer, string) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = seedByte
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, v.KeyHash(), base64.StdEncoding.EncodeToString(append([]byte{1}, seed...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}
