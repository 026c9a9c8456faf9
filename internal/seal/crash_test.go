package seal_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/keyfile/keyfiletest"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// The crash test re-executes this test binary as a writer (crashChild),
// kills it with SIGKILL at a random moment, and checks that the next Open
// lost at most the segment being written, made that loss visible, and left
// every audit entry recorded exactly once.

const (
	crashEnvDir       = "CARREL_SEAL_CRASH_CHILD"
	crashEnvRecipient = "CARREL_SEAL_CRASH_RECIPIENT"
	recordsPerSegment = 40
)

func TestMain(m *testing.M) {
	keyfiletest.Child(func(path string) error {
		_, err := seal.WriteIdentityFile(path, time.Now())
		return err
	})
	if dir := os.Getenv(crashEnvDir); dir != "" {
		crashChild(dir, os.Getenv(crashEnvRecipient))
		os.Exit(3) // crashChild only returns on error
	}
	os.Exit(m.Run())
}

// openAudit opens the real audit log in the data folder, as the service does.
func openAudit(dataDir string) (*audit.Log, error) {
	return audit.OpenIn(dataDir, "carrel/crash-test", nil)
}

func crashRecord(i int) []byte { return fmt.Appendf(nil, "rec %08d %s\n", i, strings.Repeat("p", 200)) }

func crashChild(dataDir, recipient string) {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "crash child:", err) }
	log, err := openAudit(dataDir)
	if err != nil {
		fail(err)
		return
	}
	s, err := seal.Open(context.Background(), dataDir, seal.Options{Recorder: log})
	if err != nil {
		fail(err)
		return
	}
	w, err := s.NewWriter(seal.WriterOptions{Case: "crash", Format: seal.JSONL, Recipients: []string{recipient}})
	if err != nil {
		fail(err)
		return
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := w.Write(crashRecord(i), time.Now()); err != nil {
			fail(err)
			return
		}
		if i%recordsPerSegment == recordsPerSegment-1 {
			if err := w.Cut(); err != nil {
				fail(err)
				return
			}
			fmt.Fprintln(out, "sealed")
			out.Flush()
		}
	}
}

func TestCrashLosesAtMostTheOpenSegment(t *testing.T) {
	testenv.NeedTool(t, "age")
	key := newKeypair(t)
	iterations := 4
	if testenv.Long() {
		iterations = 40
	}
	for it := range iterations {
		t.Run(fmt.Sprint(it), func(t *testing.T) { crashOnce(t, key) })
	}
}

func crashOnce(t *testing.T, key keypair) {
	dataDir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dataDir, crashEnvRecipient+"="+key.recipient)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reported := 0 // segments the child saw sealed: these must survive
	want := 2 + rand.IntN(4)
	sc := bufio.NewScanner(stdout)
	for reported < want && sc.Scan() {
		reported++
	}
	time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
	cmd.Process.Kill() // SIGKILL: no deferred code, no Close
	cmd.Wait()
	if reported < want {
		t.Fatalf("child died before sealing %d segments: %s", want, stderr.String())
	}

	// The real audit log as the child left it; its Once makes forwarding
	// idempotent across the crash.
	log, err := openAudit(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	fromChild, err := log.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.Open(context.Background(), dataDir, seal.Options{Recorder: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	segs, err := s.Segments(context.Background(), seal.Filter{})
	if err != nil {
		t.Fatal(err)
	}

	var sealed, lost []seal.Segment
	for _, seg := range segs {
		switch seg.State {
		case seal.StateSealed:
			sealed = append(sealed, seg)
		case seal.StateLost:
			lost = append(lost, seg)
		default:
			t.Errorf("segment %s is %s after recovery; want sealed or lost", seg.Name, seg.State)
		}
	}
	if len(sealed) < reported {
		t.Errorf("%d sealed segments after the crash; the child had reported %d sealed", len(sealed), reported)
	}
	if len(lost) > 1 || (len(lost) == 1 && lost[0].Seq != segs[len(segs)-1].Seq) {
		t.Errorf("lost segments = %+v; want at most the last one", lost)
	}
	// Every sealed segment is intact and the records run on without a gap.
	next := 0
	for i, seg := range sealed {
		if err := s.Check(context.Background(), seg.Name); err != nil {
			t.Error(err)
			continue
		}
		path, _ := s.Path(seg.Name)
		var plain []byte
		if i == len(sealed)-1 {
			plain = ageCLIDecrypt(t, key.file, path)
		} else {
			plain = decrypt(t, key.id, path)
		}
		for _, line := range bytes.SplitAfter(plain, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if !bytes.Equal(line, crashRecord(next)) {
				t.Fatalf("segment %s: record %q; want record %d", seg.Name, line[:min(len(line), 12)], next)
			}
			next++
		}
	}
	if next != len(sealed)*recordsPerSegment {
		t.Errorf("%d records in %d sealed segments; want %d each", next, len(sealed), recordsPerSegment)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".partial") {
			t.Errorf("%s left after recovery", en.Name())
		}
	}
	// Each segment has exactly one audit entry, whether the child recorded it
	// or recovery forwarded it.
	audited, err := log.Entries(context.Background(), audit.Query{Kinds: []audit.Kind{audit.SegmentSealed, audit.SegmentLost}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, en := range audited {
		if name, ok := en.Value("name"); ok {
			count[string(en.Kind)+" "+name]++
		}
	}
	for _, seg := range segs {
		kind := audit.SegmentSealed
		if seg.State == seal.StateLost {
			kind = audit.SegmentLost
		}
		if n := count[string(kind)+" "+seg.Name]; n != 1 {
			t.Errorf("%s entries for %s = %d; want 1", kind, seg.Name, n)
		}
	}
	if len(audited) != len(segs) {
		t.Errorf("%d segment entries in the audit log for %d segments", len(audited), len(segs))
	}
	total, _ := log.Size(context.Background())
	t.Logf("child reported %d sealed; recovery found %d sealed, %d lost; audit log had %d entries, recovery added %d",
		reported, len(sealed), len(lost), fromChild, total-fromChild)
}
