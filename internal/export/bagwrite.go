package export

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// fileSum is what the manifests need of one written file.
type fileSum struct {
	Path           string // slash-separated, relative to the bag root
	Size           int64
	SHA256, SHA512 []byte
}

// bagWriter writes the files of a bag under its (temporary) root, hashing
// each as it is written so that no file is read twice.
type bagWriter struct {
	root     string
	progress *meter

	mu      sync.Mutex // segments are written concurrently
	payload []fileSum  // under data/
	tags    []fileSum  // tag files other than the tag manifests
}

// sumFile is a file being written into the bag.
type sumFile struct {
	b      *bagWriter
	rel    string
	f      *os.File
	w      *bufio.Writer
	h256   hash.Hash
	h512   hash.Hash
	n      int64
	closed bool
	sum    fileSum // set by Close
}

// create starts the file rel (slash-separated) under the bag root.
func (b *bagWriter) create(rel string) (*sumFile, error) {
	if err := checkPath(rel); err != nil {
		return nil, err
	}
	full := filepath.Join(b.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return nil, fmt.Errorf("creating folder for %s: %w", rel, err)
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", rel, err)
	}
	return &sumFile{b: b, rel: rel, f: f, w: bufio.NewWriterSize(f, 256<<10), h256: sha256.New(), h512: sha512.New()}, nil
}

func (s *sumFile) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.h256.Write(p[:n])
	s.h512.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", s.rel, err)
	}
	return n, nil
}

// Close flushes the file and records its digests. The whole bag is synced
// once before it is renamed into place (syncBag).
func (s *sumFile) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", s.rel, err)
	}
	if err := testHookFileWritten(s.rel); err != nil {
		return err
	}
	s.sum = fileSum{Path: s.rel, Size: s.n, SHA256: s.h256.Sum(nil), SHA512: s.h512.Sum(nil)}
	s.b.mu.Lock()
	if strings.HasPrefix(s.rel, "data/") {
		s.b.payload = append(s.b.payload, s.sum)
	} else {
		s.b.tags = append(s.b.tags, s.sum)
	}
	s.b.mu.Unlock()
	if strings.HasPrefix(s.rel, "data/") {
		s.b.progress.fileDone()
	}
	return nil
}

// abort closes the file after a failure; the whole temporary bag is
// removed by the caller.
func (s *sumFile) abort() {
	if !s.closed {
		s.closed = true
		s.f.Close()
	}
}

// writeFile writes a whole file at once.
func (b *bagWriter) writeFile(rel string, data []byte) (fileSum, error) {
	f, err := b.create(rel)
	if err != nil {
		return fileSum{}, err
	}
	if _, err := f.Write(data); err != nil {
		f.abort()
		return fileSum{}, err
	}
	if err := f.Close(); err != nil {
		return fileSum{}, err
	}
	return f.sum, nil
}

// oxum is the Payload-Oxum value: octets and file count of the payload.
func (b *bagWriter) oxum() string {
	var n int64
	for _, f := range b.payload {
		n += f.Size
	}
	return fmt.Sprintf("%d.%d", n, len(b.payload))
}

// finish writes the payload manifests, then the tag manifests over every
// tag file (bagit.txt, bag-info.txt and the payload manifests), and syncs
// the bag to disk. It returns the SHA-256 of tagmanifest-sha256.txt, which
// the export.end audit entry carries.
func (b *bagWriter) finish() ([]byte, error) {
	for _, alg := range algorithms {
		if _, err := b.writeFile("manifest-"+alg+".txt", encodeManifest(lines(b.payload, alg))); err != nil {
			return nil, err
		}
	}
	var tagSum []byte
	tags := slices.Clone(b.tags) // bagit.txt, bag-info.txt and the payload manifests
	for _, alg := range algorithms {
		sum, err := b.writeFile("tagmanifest-"+alg+".txt", encodeManifest(lines(tags, alg)))
		if err != nil {
			return nil, err
		}
		if alg == "sha256" {
			tagSum = sum.SHA256
		}
	}
	if err := syncBag(b.root); err != nil {
		return nil, fmt.Errorf("syncing the bag to disk: %w", err)
	}
	return tagSum, nil
}

func lines(files []fileSum, alg string) []manifestLine {
	out := make([]manifestLine, 0, len(files))
	for _, f := range files {
		sum := f.SHA256
		if alg == "sha512" {
			sum = f.SHA512
		}
		out = append(out, manifestLine{Sum: sum, Path: f.Path})
	}
	return out
}

// payloadPath joins slash-separated parts under data/.
func payloadPath(parts ...string) string { return path.Join(append([]string{"data"}, parts...)...) }

// testHookFileWritten lets tests fail an export after a given file, to
// show that no half bundle is left behind.
var testHookFileWritten = func(rel string) error { return nil }
