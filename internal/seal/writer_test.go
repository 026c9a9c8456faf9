package seal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/seal"
)

// The capture engine's contract, checked against its own declaration.
var _ capture.Sink = (*seal.Writer)(nil)

const marker = "CARREL-PLAINTEXT-MARKER-7f3a"

func TestWriterSealsForTheAgeCLI(t *testing.T) {
	e := newEnv(t)
	header := []byte("# header " + marker + "\n")
	w := e.writer(seal.WriterOptions{Header: header})
	want := bytes.Clone(header)
	t0 := e.clock.Now()
	for i := range 100 {
		rec := jsonRecord(i)
		rec = append(rec[:len(rec)-1], []byte(" "+marker+"\n")...)
		if err := w.Write(rec, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec...)
		clear(rec) // Write must not keep rec
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	segs := e.segments(seal.Filter{})
	if len(segs) != 1 {
		t.Fatalf("Segments() = %d rows; want 1", len(segs))
	}
	seg := segs[0]
	path, err := e.store.Path(seg.Name)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte(marker)) || bytes.Contains(ct, []byte("host-000042")) {
		t.Error("ciphertext contains plaintext")
	}
	if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n-> X25519 ")) {
		t.Errorf("segment does not start with an age X25519 header: %q", ct[:40])
	}
	if got := ageCLIDecrypt(t, e.key.file, path); !bytes.Equal(got, want) {
		t.Errorf("age -d = %d bytes; want the %d bytes written", len(got), len(want))
	}

	sum := sha256.Sum256(ct)
	checks := []struct{ what, got, want string }{
		{"state", string(seg.State), string(seal.StateSealed)},
		{"case", seg.Case, "case-1"},
		{"format", string(seg.Format), "jsonl"},
		{"records", strconv.FormatInt(seg.Records, 10), "100"},
		{"size", strconv.FormatInt(seg.Size, 10), strconv.Itoa(len(ct))},
		{"sha256", seg.SHA256, hex.EncodeToString(sum[:])},
		{"from", seg.From.String(), t0.String()},
		{"to", seg.To.String(), t0.Add(99 * time.Millisecond).String()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("segment %s = %s; want %s", c.what, c.got, c.want)
		}
	}

	ev := e.rec.of(audit.SegmentSealed)
	if len(ev) != 1 {
		t.Fatalf("segment.sealed entries = %d; want 1", len(ev))
	}
	for key, want := range map[string]string{
		"case": "case-1", "name": seg.Name, "sha256": seg.SHA256, "size": strconv.Itoa(len(ct)),
		"records": "100", "from": t0.Format(time.RFC3339Nano), "to": t0.Add(99 * time.Millisecond).Format(time.RFC3339Nano),
	} {
		if got := field(ev[0], key); got != want {
			t.Errorf("segment.sealed %s = %q; want %q", key, got, want)
		}
	}
	if err := e.store.Check(context.Background(), seg.Name); err != nil {
		t.Errorf("Check(%s) = %v; want nil", seg.Name, err)
	}
}

func TestWriterStartsEverySegmentWithTheHeader(t *testing.T) {
	e := newEnv(t)
	header := []byte("SHB+IDB")
	w := e.writer(seal.WriterOptions{Format: seal.PCAPNG, Header: header})
	var want [][]byte
	for s := range 3 {
		body := bytes.Clone(header)
		for i := range 5 {
			rec := []byte("block-" + strconv.Itoa(s) + "-" + strconv.Itoa(i))
			if err := w.Write(rec, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			body = append(body, rec...)
		}
		want = append(want, body)
		e.clock.Add(time.Second)
		if err := w.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	segs := e.segments(seal.Filter{})
	if len(segs) != 3 {
		t.Fatalf("Segments() = %d rows; want 3", len(segs))
	}
	for i, seg := range segs {
		if !strings.HasSuffix(seg.Name, ".pcapng.age") {
			t.Errorf("segment name %s; want a .pcapng.age name", seg.Name)
		}
		path, _ := e.store.Path(seg.Name)
		if got := decrypt(t, e.key.id, path); !bytes.Equal(got, want[i]) {
			t.Errorf("segment %d = %q; want %q", i, got, want[i])
		}
	}
}

func TestWriterDueByAge(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{})
	defer w.Close()
	t0 := e.clock.Now()
	if w.Due(t0.Add(time.Hour)) {
		t.Error("Due() = true with no open segment; want false")
	}
	if err := w.Write(jsonRecord(1), t0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after time.Duration
		want  bool
	}{
		{0, false}, {59 * time.Second, false}, {60*time.Second - 1, false}, {60 * time.Second, true}, {5 * time.Minute, true},
	} {
		if got := w.Due(t0.Add(c.after)); got != c.want {
			t.Errorf("Due(open+%v) = %v; want %v", c.after, got, c.want)
		}
	}
	if err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	if w.Due(t0.Add(time.Hour)) {
		t.Error("Due() after Cut = true; want false")
	}
}

func TestWriterDueBySize(t *testing.T) {
	e := newEnv(t)
	const maxSize = 200 << 10
	w := e.writer(seal.WriterOptions{MaxSize: maxSize})
	rec := bytes.Repeat([]byte("x"), 1000)
	writes := 0
	for !w.Due(e.clock.Now()) {
		if err := w.Write(rec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		writes++
		if writes > 1000 {
			t.Fatal("Due() never became true")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seg := e.segments(seal.Filter{})[0]
	// Due turned true with the first record that took the ciphertext to
	// MaxSize: so the file is at least MaxSize and less than one record more.
	if seg.Size < maxSize || seg.Size >= maxSize+int64(len(rec)) {
		t.Errorf("segment size = %d after %d writes; want within [%d, %d)", seg.Size, writes, maxSize, maxSize+len(rec))
	}
}

func TestWriterCreatesNothingWithoutRecords(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{Header: []byte("hdr")})
	if err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if segs := e.segments(seal.Filter{}); len(segs) != 0 {
		t.Errorf("Segments() = %d rows; want 0", len(segs))
	}
	entries, _ := os.ReadDir(e.store.Dir())
	for _, en := range entries {
		if strings.Contains(en.Name(), ".age") {
			t.Errorf("file %s exists; want no segment file", en.Name())
		}
	}
	if err := w.Write(jsonRecord(1), e.clock.Now()); !errors.Is(err, seal.ErrClosed) {
		t.Errorf("Write after Close = %v; want ErrClosed", err)
	}
}

func TestWriterNamesSortByTimeAndNeverCollide(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{})
	for range 12 {
		if err := w.Write(jsonRecord(1), e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := w.Cut(); err != nil { // several in the same millisecond
			t.Fatal(err)
		}
		e.clock.Add(700 * time.Millisecond)
	}
	w.Close()
	// A second run of the same case after a restart.
	e.reopen()
	w = e.writer(seal.WriterOptions{})
	w.Write(jsonRecord(2), e.clock.Now())
	w.Close()

	segs := e.segments(seal.Filter{})
	names := make([]string, len(segs))
	seen := map[string]bool{}
	for i, s := range segs {
		names[i] = s.Name
		if seen[s.Name] {
			t.Errorf("name %s used twice", s.Name)
		}
		seen[s.Name] = true
		n, err := seal.ParseName(s.Name)
		if err != nil || n.String() != s.Name || !n.Opened.Equal(s.Opened) {
			t.Errorf("ParseName(%s) = %+v, %v; want the row's name and opening time", s.Name, n, err)
		}
	}
	if len(segs) != 13 {
		t.Fatalf("Segments() = %d rows; want 13", len(segs))
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("names in time order are not sorted: %v", names)
	}
}

func TestNewWriterRejects(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		o    seal.WriterOptions
		want string
	}{
		{"case with slash", seal.WriterOptions{Case: "../x", Format: seal.JSONL, Recipients: []string{e.key.recipient}}, "cannot name segments"},
		{"case with space", seal.WriterOptions{Case: "a b", Format: seal.JSONL, Recipients: []string{e.key.recipient}}, "cannot name segments"},
		{"format", seal.WriterOptions{Case: "c", Format: "pcap", Recipients: []string{e.key.recipient}}, "want jsonl or pcapng"},
		{"no recipient", seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{}}, "no recipient"},
		{"garbage recipient", seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{"age1nope"}}, "recipient 1"},
		{"ssh key", seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{"ssh-ed25519 AAAA"}}, "not an age X25519 public key"},
		{"post-quantum", seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{"age1pq1xyz"}}, "not an age X25519 public key"},
		{"negative quota", seal.WriterOptions{Case: "c", Format: seal.JSONL, Recipients: []string{e.key.recipient}, MaxBytes: -1}, "must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := e.store.NewWriter(c.o)
			if err == nil {
				w.Close()
				t.Fatalf("NewWriter(%+v) = nil error; want %q", c.o, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewWriter() = %v; want it to say %q", err, c.want)
			}
		})
	}
}

func TestWriterStatsFromAnotherGoroutine(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{MaxSize: 64 << 10})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // what `carrel status` does while capture runs
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				w.Stats()
			}
		}
	}()
	var plain int64
	for i := range 2000 {
		rec := jsonRecord(i)
		if err := w.Write(rec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		plain += int64(len(rec))
		if w.Due(e.clock.Now()) {
			if err := w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Close()
	close(stop)
	wg.Wait()
	st := w.Stats()
	u, err := e.store.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 2000 || st.Plain != plain || st.Segments != int64(u.Segments) || st.Sealed != u.Bytes || st.Segments < 2 {
		t.Errorf("Stats() = %+v; want 2000 records, %d plain bytes, %d segments of %d bytes", st, plain, u.Segments, u.Bytes)
	}
	// The bufio layer batches age's 64 KiB chunks: far fewer writes than records.
	if st.FileWrites == 0 || st.FileWrites > st.Segments*8 {
		t.Errorf("FileWrites = %d for %d segments; want a few per segment", st.FileWrites, st.Segments)
	}
}

func TestStorePathRefusesNonSegments(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"../etc/passwd", "traffic.db", "", "case-1-20240501T120000.000Z-00000001.jsonl.age/../../x"} {
		if p, err := e.store.Path(name); err == nil {
			t.Errorf("Path(%q) = %q; want an error", name, p)
		}
	}
	name := "case-1-20240501T120000.000Z-00000001.jsonl.age"
	if p, err := e.store.Path(name); err != nil || p != filepath.Join(e.store.Dir(), name) {
		t.Errorf("Path(%q) = %q, %v; want it inside %s", name, p, err, e.store.Dir())
	}
}
