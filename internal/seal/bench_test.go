package seal_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/seal"
	"github.com/carrel-lib/carrel/internal/testenv"
)

// Benchmarks of sealing: the Writer (age, bufio, fsync and index row per
// 16 MiB segment) against Debian's age CLI and the age library alone on the
// same bytes. Results and commands: BENCHMARKS.md, ## Sealing.

// benchRecords are the two record shapes: a metadata JSON line and a
// 1514-byte frame as a pcapng enhanced packet block (28 + 1514 + padding + 4).
var benchRecords = []struct {
	name   string
	format seal.Format
	rec    []byte
}{
	{"jsonl", seal.JSONL, []byte(`{"kind":"flow","ts":"2024-05-01T12:00:00.123456Z","proto":"tcp","src":"10.0.0.23","sport":51544,"dst":"93.184.216.34","dport":443,"first":"2024-05-01T11:59:58.1Z","last":"2024-05-01T12:00:00.1Z","pkts_out":12,"bytes_out":1534,"pkts_in":10,"bytes_in":8844}` + "\n")},
	{"pcapng1514", seal.PCAPNG, incompressible(1, 28+1516+4)},
}

func BenchmarkWriter(b *testing.B) {
	for _, r := range benchRecords {
		for _, buf := range []struct {
			name string
			size int
		}{{"bufio256k", 256 << 10}, {"nobufio", 0}} {
			b.Run(r.name+"/"+buf.name, func(b *testing.B) {
				e := newEnv(b)
				w := e.writer(seal.WriterOptions{Format: r.format, Now: time.Now, MinFree: -1})
				seal.SetBufSize(w, buf.size)
				ts := time.Now() // the engine passes each packet's time
				b.SetBytes(int64(len(r.rec)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := w.Write(r.rec, ts); err != nil {
						b.Fatal(err)
					}
					if w.Due(time.Time{}) { // size only: the zero time is never MaxAge past
						if err := w.Cut(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st := w.Stats()
				b.ReportMetric(float64(st.FileWrites)/(float64(st.Plain)/(1<<20)), "writes/MiB")
				purge(b, e)
			})
		}
	}
}

// purge deletes the benchmark's segments so b.N runs don't fill the disk.
func purge(b *testing.B, e *env) {
	_, err := e.store.Purge(context.Background(), time.Now().Add(time.Hour),
		func(string) (time.Time, bool) { return time.Now(), true }, 0)
	if err != nil {
		b.Fatal(err)
	}
}

// benchInput writes 16 MiB (one default segment) of r's records to a file.
func benchInput(b *testing.B, rec []byte) (path string, size int64) {
	var buf bytes.Buffer
	for buf.Len() < seal.DefaultMaxSize {
		buf.Write(rec)
	}
	path = filepath.Join(b.TempDir(), "plain")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return path, int64(buf.Len())
}

// BenchmarkAgeCLI pipes the same bytes through `age -r` (Debian's CLI, a
// process per 16 MiB segment, no fsync).
func BenchmarkAgeCLI(b *testing.B) {
	agePath := testenv.NeedTool(b, "age")
	k := newKeypair(b)
	for _, r := range benchRecords {
		b.Run(r.name, func(b *testing.B) {
			in, size := benchInput(b, r.rec)
			out := filepath.Join(b.TempDir(), "out.age")
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				f, err := os.Open(in)
				if err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command(agePath, "-r", k.recipient, "-o", out)
				cmd.Stdin = f
				if o, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("age: %v: %s", err, o)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkAgeLibrary is the ceiling: filippo.io/age encrypting the same
// records to memory, no file, no index.
func BenchmarkAgeLibrary(b *testing.B) {
	k := newKeypair(b)
	for _, r := range benchRecords {
		b.Run(r.name, func(b *testing.B) {
			b.SetBytes(int64(len(r.rec)))
			b.ReportAllocs()
			w, err := age.Encrypt(io.Discard, k.id.Recipient())
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				w.Write(r.rec)
			}
			w.Close()
		})
	}
}
