package seal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// sealedPlaintext decrypts every sealed segment in order and concatenates.
func (e *env) sealedPlaintext() []byte {
	e.t.Helper()
	var all []byte
	for _, seg := range e.segments(seal.Filter{States: []seal.State{seal.StateSealed}}) {
		path, _ := e.store.Path(seg.Name)
		all = append(all, decrypt(e.t, e.key.id, path)...)
	}
	return all
}

func TestQuotaStopsBeforeTheLimit(t *testing.T) {
	e := newEnv(t)
	const quota = 300 << 10
	w := e.writer(seal.WriterOptions{MaxSize: 64 << 10, MaxBytes: quota})
	var accepted []byte
	var err error
	for i := 0; ; i++ {
		rec := jsonRecord(i)
		if err = w.Write(rec, e.clock.Now()); err != nil {
			break
		}
		accepted = append(accepted, rec...)
		if w.Due(e.clock.Now()) {
			if err := w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
		if i > 100000 {
			t.Fatal("quota never reached")
		}
	}
	if !errors.Is(err, seal.ErrQuota) {
		t.Fatalf("Write() = %v; want ErrQuota", err)
	}
	u, _ := e.store.Usage(context.Background())
	if u.Bytes > quota || u.Bytes < quota-(64<<10)-1024 || u.Open != 0 {
		t.Errorf("Usage() = %+v; want at most %d bytes, close to it, nothing open", u, quota)
	}
	// Everything accepted before the refusal is sealed; the refused record is not.
	if got := e.sealedPlaintext(); !bytes.Equal(got, accepted) {
		t.Errorf("sealed plaintext = %d bytes; want the %d accepted bytes", len(got), len(accepted))
	}
	ev := e.rec.of(audit.QuotaReached)
	if len(ev) != 1 || field(ev[0], "case") != "case-1" || field(ev[0], "max_bytes") != strconv.Itoa(quota) {
		t.Fatalf("capture.quota entries = %+v; want one for case-1 with max_bytes %d", ev, quota)
	}
	if used, _ := strconv.ParseInt(field(ev[0], "used_bytes"), 10, 64); used != u.Bytes {
		t.Errorf("capture.quota used_bytes = %d; want %d (what the store holds)", used, u.Bytes)
	}
	// It stays refused, without recording again.
	if err := w.Write([]byte("x\n"), e.clock.Now()); !errors.Is(err, seal.ErrQuota) {
		t.Errorf("Write after quota = %v; want ErrQuota", err)
	}
	w.Close()
	if n := len(e.rec.of(audit.QuotaReached)); n != 1 {
		t.Errorf("capture.quota entries = %d; want 1", n)
	}
}

func TestQuotaCountsEarlierRuns(t *testing.T) {
	e := newEnv(t)
	seg := e.sealOne("old-case", 200)
	e.reopen()
	w := e.writer(seal.WriterOptions{MaxBytes: seg.Size + 100})
	err := w.Write(jsonRecord(1), e.clock.Now())
	if !errors.Is(err, seal.ErrQuota) {
		t.Fatalf("Write() with the quota used by an earlier run = %v; want ErrQuota", err)
	}
	w.Close()
	if segs := e.segments(seal.Filter{}); len(segs) != 1 {
		t.Errorf("Segments() = %d rows; want only the earlier one", len(segs))
	}
}

func TestDiskMarginRefusesToStart(t *testing.T) {
	e := newEnv(t)
	w := e.writer(seal.WriterOptions{MinFree: 1 << 62})
	err := w.Write(jsonRecord(1), e.clock.Now())
	if !errors.Is(err, seal.ErrDiskLow) {
		t.Fatalf("Write() with a huge margin = %v; want ErrDiskLow", err)
	}
	w.Close()
	if segs := e.segments(seal.Filter{}); len(segs) != 0 {
		t.Errorf("Segments() = %d rows; want none", len(segs))
	}
	if ev := e.rec.of(audit.CaptureError); len(ev) != 1 || field(ev[0], "case") != "case-1" {
		t.Errorf("capture.error entries = %+v; want one for case-1", ev)
	}
}

// mountTmpfs mounts a small tmpfs, a real file system that really fills up.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.NeedRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// incompressible returns n bytes that look like pcapng blocks to no one.
func incompressible(i, n int) []byte {
	b := make([]byte, n)
	copy(b, fmt.Sprintf("block %d ", i))
	for j := 16; j < n; j++ {
		b[j] = byte(j*7 + i)
	}
	return b
}

func TestDiskMarginOnARealFileSystem(t *testing.T) {
	e := newEnvIn(t, mountTmpfs(t, "8m"))
	w := e.writer(seal.WriterOptions{Format: seal.PCAPNG, MaxSize: 1 << 20, MinFree: 2 << 20})
	var accepted []byte
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		rec := incompressible(i, 1514)
		if err = w.Write(rec, e.clock.Now()); err == nil {
			accepted = append(accepted, rec...)
			if w.Due(e.clock.Now()) {
				err = w.Cut()
			}
		}
	}
	if !errors.Is(err, seal.ErrDiskLow) {
		t.Fatalf("writing into an 8 MiB tmpfs with a 2 MiB margin = %v; want ErrDiskLow", err)
	}
	w.Close()
	if got := e.sealedPlaintext(); !bytes.Equal(got, accepted) {
		t.Errorf("sealed plaintext = %d bytes; want the %d accepted", len(got), len(accepted))
	}
	for _, seg := range e.segments(seal.Filter{}) {
		if err := e.store.Check(context.Background(), seg.Name); err != nil {
			t.Error(err)
		}
	}
}

func TestFullDiskLosesOnlyTheOpenSegment(t *testing.T) {
	e := newEnvIn(t, mountTmpfs(t, "2m"))
	w := e.writer(seal.WriterOptions{Format: seal.PCAPNG, MinFree: -1})
	var first []byte
	for i := range 300 { // ~450 KiB, sealed
		rec := incompressible(i, 1514)
		if err := w.Write(rec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		first = append(first, rec...)
	}
	if err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = w.Write(incompressible(i, 1514), e.clock.Now())
	}
	if err == nil {
		err = w.Cut()
	}
	t.Logf("error on a full disk: %v", err)
	if err == nil || errors.Is(err, seal.ErrDiskLow) {
		t.Fatalf("writing past a full tmpfs = %v; want the file system's error", err)
	}
	w.Close()
	segs := e.segments(seal.Filter{})
	if len(segs) != 2 || segs[0].State != seal.StateSealed || segs[1].State != seal.StateLost {
		t.Fatalf("Segments() = %+v; want one sealed, one lost", segs)
	}
	if got := e.sealedPlaintext(); !bytes.Equal(got, first) {
		t.Errorf("sealed plaintext = %d bytes; want the first segment's %d", len(got), len(first))
	}
	lost := e.rec.of(audit.SegmentLost)
	if len(lost) != 1 || field(lost[0], "name") != segs[1].Name || field(lost[0], "size") != strconv.FormatInt(segs[1].Size, 10) {
		t.Errorf("segment.lost entries = %+v; want one for %s with size %d", lost, segs[1].Name, segs[1].Size)
	}
	if _, err := os.Stat(filepath.Join(e.store.Dir(), segs[1].Name+".partial")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file of the lost segment: %v; want it removed", err)
	}
}
