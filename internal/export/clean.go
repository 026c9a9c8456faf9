package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
	"github.com/carrel-lib/carrel/internal/seal"
)

// Cleaned is what Clean did about one export a killed process left
// unfinished.
type Cleaned struct {
	Order string // the order's reference
	// Outcome is "removed" (the unfinished bundle, decrypted traffic
	// included, was removed), "signed" (export.end had been recorded: the
	// bundle got its signature and stays), "kept" (the bundle was complete
	// already), "none" (nothing was left on disk), or "" when Err says why
	// nothing could be done.
	Outcome string
	Removed []string // the folders removed
	Err     error    // what could not be done; the marker stays for the next try
}

// Clean finds the exports that a killed process left unfinished (their
// markers in the data folder; exports still running hold theirs locked and
// are left alone) and, for each: removes the temporary folder it wrote
// into, and the bundle it had moved into place unless it had recorded
// export.end, in which case the bundle gets its signature; lifts the legal
// holds it placed unless it finished; records export.cleaned; and removes
// the marker. It removes a folder only when it is the one the export made
// (same device and inode, or volume and file index), whatever now stands at
// its path. `carrel export clean` runs it; every export runs it first.
// Of o it uses Config, DataDir, Actor and Now.
func Clean(ctx context.Context, o Options) ([]Cleaned, error) {
	if o.Config == nil {
		return nil, fmt.Errorf("%w: no config", ErrInvalid)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actor == "" {
		o.Actor = "export"
	}
	x := &exporter{o: o, cfg: o.Config, startSeq: -1}
	markers, err := pendingMarkers(x.dataDir())
	if err != nil || len(markers) == 0 {
		return nil, err
	}
	defer x.close()
	if err := x.open(ctx); err != nil {
		return nil, err
	}
	return x.clean(ctx)
}

func (x *exporter) clean(ctx context.Context) ([]Cleaned, error) {
	markers, err := pendingMarkers(x.dataDir())
	if err != nil {
		return nil, err
	}
	var out []Cleaned
	for _, m := range markers {
		p, err := openPending(m)
		if errors.Is(err, errLocked) || errors.Is(err, fs.ErrNotExist) {
			continue // still running, or it finished meanwhile
		}
		if err != nil {
			out = append(out, Cleaned{Err: fmt.Errorf("reading %s: %w", m, err)})
			continue
		}
		out = append(out, x.cleanOne(ctx, p))
	}
	return out, nil
}

// cleanOne cleans up after the export of marker p.
func (x *exporter) cleanOne(ctx context.Context, p *pending) Cleaned {
	st := p.state
	c := Cleaned{Order: st.OrderRef, Outcome: "none"}
	if st.Format != pendingFormat {
		// Its first line never reached the disk whole: the export creates
		// nothing before it has.
		if err := p.done(); err != nil {
			c.Err = err
		}
		return c
	}
	var errs []error
	remove := func(dir string) {
		if err := removeFolder(dir, st.Folder); err != nil {
			errs = append(errs, err)
		} else {
			c.Removed = append(c.Removed, dir)
			c.Outcome = "removed"
		}
	}
	if ours, err := isOurFolder(st.Partial, st.Folder); err != nil {
		errs = append(errs, err)
	} else if ours {
		remove(st.Partial)
	}
	finished := false
	// The bundle at Out is the export's only once it noted its folder: the
	// rename comes long after.
	if ours, err := isOurFolder(st.Out, st.Folder); st.Folder != "" && err != nil {
		errs = append(errs, err)
	} else if st.Folder != "" && ours {
		switch outcome, err := x.finishSignature(ctx, st); {
		case err != nil:
			errs = append(errs, err)
		case outcome != "":
			c.Outcome, finished = outcome, true
		default:
			remove(st.Out)
		}
	}
	if !finished && len(st.Holding) > 0 && x.store != nil {
		if _, err := x.store.Release(ctx, st.OrderRef, st.Holding...); err != nil && !errors.Is(err, seal.ErrNoHold) {
			errs = append(errs, fmt.Errorf("lifting the legal holds it placed: %w", err))
		}
	}
	if len(errs) == 0 {
		sum := sha256.Sum256([]byte(st.OrderRef))
		_, err := x.log.Record(ctx, audit.Event{Kind: audit.ExportCleaned, Actor: x.o.Actor, Fields: []audit.Field{
			audit.Hash("order_sha256", sum[:]), audit.Token("outcome", c.Outcome)}})
		if err != nil {
			errs = append(errs, fmt.Errorf("recording export.cleaned: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := p.done(); err != nil {
			errs = append(errs, err)
		}
	} else {
		p.f.Close()
	}
	if len(errs) > 0 {
		c.Outcome, c.Err = "", errors.Join(errs...)
	}
	return c
}

// finishSignature looks at a bundle in place whose export did not finish:
// "kept" when its signature is there, "signed" when export.end was
// recorded for it and the signature is now written, "" when export.end was
// never recorded (the bundle must go).
func (x *exporter) finishSignature(ctx context.Context, st pendingState) (string, error) {
	root, err := os.OpenRoot(st.Out)
	if err != nil {
		return "", err
	}
	defer root.Close()
	fsys := dirFS{root}
	complete := true
	for _, f := range signatureFiles {
		if _, err := root.Lstat(filepath.FromSlash(f)); err != nil {
			complete = false
		}
	}
	if complete {
		return "kept", nil
	}
	tag, err := readSmall(fsys, "tagmanifest-sha256.txt", maxTagFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	tagSum := sha256.Sum256(tag)
	orderSum := sha256.Sum256([]byte(st.OrderRef))
	q := audit.Query{Kinds: []audit.Kind{audit.ExportEnd}, Fields: map[string]string{
		"order_sha256": hex.EncodeToString(orderSum[:]), "tagmanifest_sha256": hex.EncodeToString(tagSum[:])}}
	if st.StartSeq != nil {
		q.From = *st.StartSeq
	}
	ends, err := x.log.Entries(ctx, q)
	if err != nil || len(ends) == 0 {
		return "", err
	}
	note, err := readSmall(fsys, checkpointFile, maxInfoFile)
	if err != nil {
		return "", err
	}
	keys, err := x.log.Verifiers(ctx)
	if err != nil {
		return "", err
	}
	cp, err := audit.OpenCheckpoint(note, keys...)
	if err != nil {
		return "", fmt.Errorf("the bundle's %s: %w", checkpointFile, err)
	}
	// A signature the kill interrupted is written again from the start.
	entries, err := os.ReadDir(st.Out)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), signatureTemp) {
			if err := os.RemoveAll(filepath.Join(st.Out, e.Name())); err != nil {
				return "", err
			}
		}
	}
	if err := writeSignature(ctx, x.log, st.Out, ends[0].Seq, cp.Size); err != nil {
		return "", err
	}
	return "signed", nil
}

// isOurFolder reports whether the folder at path is the one an export made
// (identified by id): a folder that is not, a link, or a file at the path
// is left alone, and said so. Without an id (a kill between making the
// folder and noting it) the folder is still empty: it is ours when it is a
// folder at all, and removeFolder removes it only while it is empty.
func isOurFolder(path, id string) (bool, error) {
	if path == "" {
		return false, nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not the folder the export made (it is no folder); left alone", displayName(path))
	}
	if id == "" {
		return true, nil
	}
	got, err := folderID(path)
	if err != nil {
		return false, err
	}
	if got != id {
		return false, fmt.Errorf("%s is not the folder the export made (another folder took its place); left alone", displayName(path))
	}
	return true, nil
}

// removeFolder removes the export's folder at path; one the export had not
// noted yet (id empty) only while it is empty.
func removeFolder(path, id string) error {
	var err error
	if id == "" {
		err = os.Remove(path)
	} else {
		err = os.RemoveAll(path)
	}
	if err != nil {
		return fmt.Errorf("removing the unfinished bundle %s: %w", displayName(path), err)
	}
	return syncDir(filepath.Dir(path))
}
