package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/carrel-lib/carrel/internal/testenv"
)

// pcapOf writes frames as a pcap file and returns its bytes and where each
// record ends.
func pcapOf(t *testing.T, frames ...[]byte) ([]byte, []int) {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ends := []int{b.Len()}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1714557600+int64(i), 0), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, b.Len())
	}
	return b.Bytes(), ends
}

// TestTrafficDecodeTruncated cuts a three-record pcap inside each record
// (internal/capture's TestCaptureReaderTruncated cuts at every byte): the records before the cut are printed, a warning names
// the file (quoted) and the record, the next file is still decoded, and
// the exit status is 1.
func TestTrafficDecodeTruncated(t *testing.T) {
	dir := t.TempDir()
	whole, ends := pcapOf(t, dnsFrame(t, "one.example.test"), dnsFrame(t, "two.example.test"), dnsFrame(t, "three.example.test"))
	next := filepath.Join(dir, "next.pcap")
	nextBytes, _ := pcapOf(t, dnsFrame(t, "next.example.test"))
	os.WriteFile(next, nextBytes, 0o644)
	names := []string{"one", "two", "three"}
	for rec := 1; rec <= 3; rec++ {
		// Every byte of the 16-byte record header, and the first, a middle
		// and the last byte of the packet data.
		start, end := ends[rec-1], ends[rec]
		var cuts []int
		for c := start + 1; c <= start+17; c++ {
			cuts = append(cuts, c)
		}
		cuts = append(cuts, (start+16+end)/2, end-1)
		for _, cut := range cuts {
			path := filepath.Join(dir, fmt.Sprintf("cut %d.pcap", cut))
			os.WriteFile(path, whole[:cut], 0o644)
			code, stdout, stderr := runCLI(t, "", "traffic", "decode", path, next)
			want := fmt.Sprintf("warning: %q: capture truncated in record %d", path, rec)
			if code != exitFailure || !strings.Contains(stderr, want) {
				t.Fatalf("decode of the file cut at byte %d (in record %d) = exit %d, stderr %q; want exit %d and %q", cut, rec, code, stderr, exitFailure, want)
			}
			for i, n := range names {
				if got, wantIt := strings.Contains(stdout, `"name":"`+n+`.example.test"`), i < rec-1; got != wantIt {
					t.Fatalf("cut at byte %d (record %d): output has %s: %v; want %v\n%s", cut, rec, n, got, wantIt, stdout)
				}
			}
			if !strings.Contains(stdout, "next.example.test") {
				t.Fatalf("cut at byte %d: the next file was not decoded:\n%s", cut, stdout)
			}
		}
	}
	// Cut exactly between records, the file is a shorter good capture.
	path := filepath.Join(dir, "two.pcap")
	os.WriteFile(path, whole[:ends[2]], 0o644)
	if code, _, stderr := runCLI(t, "", "traffic", "decode", path); code != exitOK || stderr != "" {
		t.Errorf("decode of two whole records = exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
}

// TestTrafficDecodeQuotesNames: a file name holding terminal escapes is
// printed quoted in every message, never raw.
func TestTrafficDecodeQuotesNames(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "x\x1b[2J\x1b[1;1Hcapture verified\n.pcap")
	os.WriteFile(evil, []byte("not a capture at all"), 0o644)
	whole, ends := pcapOf(t, dnsFrame(t, "one.example.test"))
	cut := filepath.Join(dir, "cut\x1b]0;title\x07.pcap")
	os.WriteFile(cut, whole[:ends[1]-3], 0o644)
	for _, args := range [][]string{
		{"traffic", "decode", evil},
		{"traffic", "decode", evil + "-missing"},
		{"traffic", "decode", cut},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitFailure || strings.ContainsAny(stderr, "\x1b\x07") || !strings.Contains(stderr, `\x1b`) {
			t.Errorf("carrel %q = exit %d, stderr %q; want exit 1 and the name quoted (no raw escape)", args, code, stderr)
		}
	}
}

// bombSize is how much a bomb holds uncompressed: under a MiB of gzip, and
// far more than the memory bound the test asserts.
const bombSize = 320 << 20

// writeBomb gzips head, then bombSize zero bytes, then tail.
func writeBomb(t *testing.T, path string, head, tail []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zw.Write(head)
	zero := make([]byte, 1<<20)
	for range bombSize >> 20 {
		zw.Write(zero)
	}
	zw.Write(tail)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTrafficDecodeBoundedMemory runs the real `carrel traffic decode` on
// gzip bombs — a pcap whose header and record claim 4 GiB and 2 GiB, and a
// pcapng with a 320 MiB block of a type carrel skips before a real packet
// — and on a giant record uncompressed: the process's peak RSS stays far
// below what the files claim or hold.
func TestTrafficDecodeBoundedMemory(t *testing.T) {
	const bound = 256 << 20
	timeBin := testenv.NeedTool(t, "time")
	dir := t.TempDir()
	le := binary.LittleEndian

	// pcap: snap length 0xFFFFFFFF, one record claiming 0x7FFFFFF0 bytes.
	pcapHead := le.AppendUint32(nil, 0xA1B2C3D4)
	pcapHead = le.AppendUint16(pcapHead, 2)
	pcapHead = le.AppendUint16(pcapHead, 4)
	pcapHead = append(pcapHead, make([]byte, 8)...)
	pcapHead = le.AppendUint32(pcapHead, 0xFFFFFFFF)
	pcapHead = le.AppendUint32(pcapHead, 1)
	pcapHead = append(pcapHead, make([]byte, 8)...)
	pcapHead = le.AppendUint32(pcapHead, 0x7FFFFFF0)
	pcapHead = le.AppendUint32(pcapHead, 0x7FFFFFF0)
	bombPcap := filepath.Join(dir, "bomb.pcap.gz")
	writeBomb(t, bombPcap, pcapHead, nil)

	// pcapng: a section, an Ethernet interface, a custom block (type
	// 0x40000BAD) of bombSize bytes, then a packet carrel must still find.
	var ng bytes.Buffer
	nw, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	nw.Flush()
	head := append([]byte(nil), ng.Bytes()...)
	head = le.AppendUint32(head, 0x40000BAD)
	head = le.AppendUint32(head, bombSize+12)
	tail := le.AppendUint32(nil, bombSize+12)
	ng.Reset()
	nw, _ = pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	nw.Flush()
	hdrLen := ng.Len()
	f := dnsFrame(t, "after.bomb.test")
	nw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1714557600, 0), CaptureLength: len(f), Length: len(f)}, f)
	nw.Flush()
	tail = append(tail, ng.Bytes()[hdrLen:]...)
	bombNg := filepath.Join(dir, "bomb.pcapng.gz")
	writeBomb(t, bombNg, head, tail)

	// Uncompressed: a record claiming 2 GiB in a 40-byte file.
	giant := filepath.Join(dir, "giant.pcap")
	os.WriteFile(giant, pcapHead, 0o644)

	for _, tt := range []struct {
		path, stdout, stderr string
		code                 int
	}{
		{bombPcap, "", "claims 2147483632 bytes", exitFailure},
		{bombNg, `"name":"after.bomb.test"`, "", exitOK},
		{giant, "", "claims 2147483632 bytes", exitFailure},
	} {
		// GNU time forks the child itself: the child's peak RSS then
		// starts from time's, not from this test's (a child of a Go
		// process inherits its parent's high-water mark through vfork).
		cmd := carrelCmd(t, "traffic", "decode", tt.path)
		peakFile := filepath.Join(dir, "peak")
		cmd.Args = append([]string{"time", "-f", "%M", "-o", peakFile, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = timeBin
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code < 0 {
			t.Fatalf("%s: %v", tt.path, err)
		}
		peak, _ := os.ReadFile(peakFile)
		lines := strings.Fields(string(peak)) // a "Command exited with …" line may come first
		if len(lines) == 0 {
			t.Fatalf("time -f %%M wrote nothing (exit %d, stderr %q)", code, stderr.String())
		}
		kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			t.Fatalf("time -f %%M wrote %q: %v", peak, err)
		}
		maxRSS := kib << 10
		t.Logf("carrel traffic decode %s: peak RSS %.1f MiB, exit %d", filepath.Base(tt.path), float64(maxRSS)/(1<<20), code)
		if maxRSS > bound {
			t.Errorf("carrel traffic decode %s: peak RSS %d MiB; want < %d MiB", filepath.Base(tt.path), maxRSS>>20, bound>>20)
		}
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("carrel traffic decode %s = exit %d, stdout %.300q, stderr %q; want exit %d, %q, %q", filepath.Base(tt.path), code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
