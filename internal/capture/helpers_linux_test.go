package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Helpers of the Linux-only tests (live capture in network namespaces,
// tshark): on other systems nothing would use them.

// fileSink is the tests' Sink: real files, one per segment, read back with
// RecordReader. cutEvery makes Due true after that many records;
// failAfter makes Write fail after that many (like a quota).
type fileSink struct {
	dir       string
	header    []byte
	f         *os.File
	n, segN   int
	inSeg     int // records in the open segment
	cutEvery  int
	failAfter int
	files     []string
	closed    bool
}

var errTestQuota = errors.New("test quota reached")

func (s *fileSink) Write(rec []byte, ts time.Time) error {
	if s.failAfter > 0 && s.n >= s.failAfter {
		return errTestQuota
	}
	if s.f == nil {
		s.segN++
		name := filepath.Join(s.dir, fmt.Sprintf("seg-%04d", s.segN))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		s.f, s.files = f, append(s.files, name)
		if _, err := f.Write(s.header); err != nil {
			return err
		}
	}
	s.n++
	s.inSeg++
	_, err := s.f.Write(rec)
	return err
}

func (s *fileSink) Due(time.Time) bool { return s.cutEvery > 0 && s.inSeg >= s.cutEvery }

func (s *fileSink) Cut() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f, s.inSeg = nil, 0
	return err
}

func (s *fileSink) Close() error { s.closed = true; return s.Cut() }

// records decodes every segment the sink wrote.
func (s *fileSink) records(t testing.TB) []Record {
	t.Helper()
	var all []Record
	for _, name := range s.files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		rr := NewRecordReader(f)
		for {
			r, err := rr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("%s: %v", name, err)
				}
				break
			}
			all = append(all, r)
		}
		f.Close()
	}
	return all
}

// execOut runs a command in the test's own namespace and returns its
// combined output.
func execOut(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // tshark warns about running as root there
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}
