package export

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A pending export is recorded in the data folder before the export
// records or writes anything, held locked while it runs, extended as it
// goes, and removed once it finished or cleaned up after itself. A marker
// left behind is an export whose process was killed (power loss, SIGKILL,
// a crash): Clean finds it, and from it the folders holding decrypted
// traffic that the export left on the stick and the legal holds it placed.
//
// The marker is the file export-<random>.pending in the data folder: JSON
// lines, each adding to what the lines before it said, so that an update
// is an append and a crash while writing one loses only that line (a torn
// last line is ignored). It is private to the service's account, like the
// rest of the data folder; it names the order (as traffic.db's holds do)
// and paths, so it never goes into the audit log.

const (
	pendingPrefix = "export-"
	pendingSuffix = ".pending"
	pendingFormat = "carrel pending export v1"
)

// pendingState is what a marker says; each line sets some of the fields.
type pendingState struct {
	Format   string `json:"format,omitempty"`
	OrderRef string `json:"order_ref,omitempty"`
	// Out is the bundle folder; Partial the temporary folder beside it
	// that the export writes into and renames to Out.
	Out     string `json:"out,omitempty"`
	Partial string `json:"partial,omitempty"`
	// Folder identifies the partial folder once made (device and inode,
	// or volume and file index): Clean removes only that folder, at
	// Partial or, once renamed, at Out, not whatever stands at the path.
	Folder string `json:"folder,omitempty"`
	// StartSeq is the export.start entry.
	StartSeq *int64 `json:"start_seq,omitempty"`
	// Holding are the segments the export put on legal hold (not those an
	// earlier export of the same order had held), written before it did.
	Holding []string `json:"holding,omitempty"`
}

// merge adds what line says to s.
func (s *pendingState) merge(line pendingState) {
	if line.Format != "" {
		s.Format = line.Format
	}
	if line.OrderRef != "" {
		s.OrderRef = line.OrderRef
	}
	if line.Out != "" {
		s.Out = line.Out
	}
	if line.Partial != "" {
		s.Partial = line.Partial
	}
	if line.Folder != "" {
		s.Folder = line.Folder
	}
	if line.StartSeq != nil {
		s.StartSeq = line.StartSeq
	}
	if line.Holding != nil {
		s.Holding = line.Holding
	}
}

// pending is the marker of the export running in this process.
type pending struct {
	dir   string // the data folder
	path  string
	f     *os.File // open and locked until done
	state pendingState
}

// errLocked: another process holds the marker (its export still runs).
var errLocked = errors.New("held by a running export")

// maxPending bounds what is read of a marker: a few paths and segment
// names.
const maxPending = 4 << 20

// newPending writes the marker of an export of order ref to out, and
// chooses the name of its partial folder beside out. The marker is on disk
// (synced, and its name in the data folder synced) when it returns.
func newPending(dataDir, ref, out string) (*pending, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(rnd[:])
	p := &pending{dir: dataDir, path: filepath.Join(dataDir, pendingPrefix+id+pendingSuffix)}
	f, err := openMarker(p.path, true)
	if err != nil {
		return nil, fmt.Errorf("recording the export in the data folder: %w", err)
	}
	p.f = f
	if err := lockFile(f); err != nil {
		p.abandon()
		return nil, fmt.Errorf("recording the export in the data folder: locking %s: %w", p.path, err)
	}
	partial := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial-"+id)
	if err := p.add(pendingState{Format: pendingFormat, OrderRef: ref, Out: out, Partial: partial}); err != nil {
		p.abandon()
		return nil, err
	}
	if err := syncDir(dataDir); err != nil {
		p.abandon()
		return nil, fmt.Errorf("recording the export in the data folder: %w", err)
	}
	return p, nil
}

// add appends line to the marker and syncs it.
func (p *pending) add(line pendingState) error {
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if _, err := p.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("recording the export's progress in %s: %w", p.path, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("recording the export's progress in %s: %w", p.path, err)
	}
	p.state.merge(line)
	return nil
}

// done removes the marker: the export finished, or cleaned up after
// itself.
func (p *pending) done() error {
	err := os.Remove(p.path)
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(p.dir)
	}
	if err != nil {
		return fmt.Errorf("removing the export's marker %s: %w", p.path, err)
	}
	return nil
}

// abandon removes a marker that recorded nothing yet.
func (p *pending) abandon() {
	p.f.Close()
	os.Remove(p.path)
}

// pendingMarkers lists the markers in the data folder.
func pendingMarkers(dataDir string) ([]string, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("looking for unfinished exports: %w", err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, pendingPrefix) && strings.HasSuffix(n, pendingSuffix) && e.Type().IsRegular() {
			out = append(out, filepath.Join(dataDir, n))
		}
	}
	return out, nil
}

// openPending opens and locks a marker another process left, and reads
// it. It returns errLocked while that process still runs.
func openPending(path string) (*pending, error) {
	f, err := openMarker(path, false)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	p := &pending{dir: filepath.Dir(path), path: path, f: f}
	b, err := io.ReadAll(io.LimitReader(f, maxPending))
	if err != nil {
		f.Close()
		return nil, err
	}
	p.state = parsePending(b)
	// Appends go after what is there, a torn line included: start them on
	// a line of their own.
	if len(b) > 0 && b[len(b)-1] != '\n' {
		if _, err := f.Write([]byte("\n")); err != nil {
			f.Close()
			return nil, err
		}
	}
	return p, nil
}

// parsePending merges the marker's lines; a line that does not parse (the
// last one, torn by a crash) adds nothing.
func parsePending(b []byte) pendingState {
	var s pendingState
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxPending)
	for sc.Scan() {
		var line pendingState
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			s.merge(line)
		}
	}
	return s
}
