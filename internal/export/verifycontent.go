package export

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/audit"
)

// checkContent checks what makes the bag carrel's evidence rather than any
// bag: the audit entries and their proofs, the export.start entry for this
// order and window, every sealed segment against its proved
// segment.sealed entry, the files an export writes and nothing else under
// data/, and custody.json against the manifests. It runs after every
// digest was checked, so the files it reads are the ones exported.
func checkContent(fsys fs.FS, bag *Bag, opts VerifyOptions, rep *Report) (*content, error) {
	c := &content{}
	order, win, err := orderAndWindow(bag)
	if err != nil {
		return nil, err
	}
	c.win, rep.Order = win, order
	for _, p := range []string{checkpointFile, verifierKeyFile, bookingsCSV, custodyFile} {
		if _, ok := bag.Files[p]; !ok {
			return nil, bad(p, "missing")
		}
	}
	cp, err := readSmall(fsys, checkpointFile, maxInfoFile)
	if err != nil {
		return nil, bad(checkpointFile, "%v", err)
	}
	keyText, err := readSmall(fsys, verifierKeyFile, maxInfoFile)
	if err != nil {
		return nil, bad(verifierKeyFile, "%v", err)
	}
	key, err := verifierKey(keyText)
	if err != nil {
		return nil, err
	}
	ck, err := audit.OpenCheckpoint(cp, key)
	if err != nil {
		return nil, bad(checkpointFile, "not a checkpoint signed by the key in %s: %v", verifierKeyFile, err)
	}
	rep.Checkpoint, rep.Verifier = ck.String(), key
	if err := checkWitnessed(fsys, bag, cp, key, opts, rep); err != nil {
		return nil, err
	}

	sealed, startSeq, err := checkEntries(fsys, bag, cp, key, order, win, rep)
	if err != nil {
		return nil, err
	}
	if startSeq < 0 {
		return nil, bad(auditDir, "no export.start entry for the order %q", order)
	}
	c.startSeq = startSeq
	if c.segments, err = checkTraffic(bag, sealed, rep); err != nil {
		return nil, err
	}
	for _, p := range sortedKeys(bag.Files) {
		ok := !strings.HasPrefix(p, "data/") || p == bookingsCSV || p == custodyFile || p == configFile ||
			p == checkpointFile || p == verifierKeyFile || isWitnessFile(p) ||
			strings.HasPrefix(p, auditDir+"/entries/") || strings.HasPrefix(p, trafficDir+"/")
		if !ok {
			return nil, bad(p, "not a file a carrel export writes")
		}
	}
	return c, checkCustody(fsys, bag, order, win)
}

// orderAndWindow reads the order reference and the window from bag-info.txt.
func orderAndWindow(bag *Bag) (string, Window, error) {
	var w Window
	get := func(label string) (string, error) {
		v, ok, err := lookup(bag.Info, label)
		if err == nil && !ok {
			return "", bad("bag-info.txt", "no %s", label)
		}
		if err != nil {
			return "", bad("bag-info.txt", "%v", err)
		}
		return v, nil
	}
	order, err := get("External-Identifier")
	if err != nil {
		return "", w, err
	}
	for _, t := range []struct {
		label string
		into  *time.Time
	}{{labelFrom, &w.From}, {labelTo, &w.To}} {
		v, err := get(t.label)
		if err != nil {
			return "", w, err
		}
		if *t.into, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return "", w, bad("bag-info.txt", "%s %q is not an RFC 3339 time", t.label, truncate(v, 80))
		}
		*t.into = t.into.UTC()
	}
	if !w.To.After(w.From) {
		return "", w, bad("bag-info.txt", "the window ends before it starts")
	}
	return order, w, nil
}

// sealedEntry is what a proved segment.sealed entry says of a segment.
type sealedEntry struct {
	sha256 string
	size   int64
}

// checkEntries verifies every audit entry's inclusion proof and collects
// the segment.sealed entries and the export.start entry for this order and
// window (-1 when there is none).
func checkEntries(fsys fs.FS, bag *Bag, cp []byte, key, order string, win Window, rep *Report) (map[string]sealedEntry, int64, error) {
	sealed := map[string]sealedEntry{}
	started := int64(-1)
	orderSum := sha256.Sum256([]byte(order))
	prefix := auditDir + "/entries/"
	for _, p := range sortedKeys(bag.Files) {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if strings.Contains(rest, "/") {
			return nil, -1, bad(p, "not a file a carrel export writes")
		}
		if seq, ok := seqOf(p, ".proof"); ok {
			if _, ok := bag.Files[entryPath(seq)]; !ok {
				return nil, -1, bad(p, "a proof without its entry %s", entryPath(seq))
			}
			continue
		}
		seq, ok := seqOf(p, ".entry")
		if !ok {
			return nil, -1, bad(p, "not a file a carrel export writes")
		}
		if _, ok := bag.Files[proofPath(seq)]; !ok {
			return nil, -1, bad(p, "no inclusion proof %s", proofPath(seq))
		}
		raw, err := readSmall(fsys, p, maxInfoFile)
		if err != nil {
			return nil, -1, bad(p, "%v", err)
		}
		proof, err := readSmall(fsys, proofPath(seq), maxInfoFile)
		if err != nil {
			return nil, -1, bad(proofPath(seq), "%v", err)
		}
		if err := audit.VerifyInclusion(raw, proof, cp, key); err != nil {
			return nil, -1, bad(p, "its inclusion proof does not verify against %s: %v", checkpointFile, err)
		}
		e, err := audit.ParseEntry(raw)
		if err != nil {
			return nil, -1, bad(p, "%v", err)
		}
		if e.Seq != seq {
			return nil, -1, bad(p, "holds entry %d", e.Seq)
		}
		rep.Entries++
		switch e.Kind {
		case audit.SegmentSealed:
			name, _ := e.Value("name")
			sum, _ := e.Value("sha256")
			size, _ := e.Value("size")
			n, _ := strconv.ParseInt(size, 10, 64)
			sealed[name] = sealedEntry{sha256: sum, size: n}
		case audit.ExportStart:
			sum, _ := e.Value("order_sha256")
			if sum != hex.EncodeToString(orderSum[:]) {
				continue
			}
			from, _ := e.Value("from")
			to, _ := e.Value("to")
			if !sameTime(from, win.From) || !sameTime(to, win.To) {
				return nil, -1, bad(p, "export.start was for the window %s – %s, bag-info.txt says %s – %s",
					displayName(from), displayName(to), win.From.Format(timeLayout), win.To.Format(timeLayout))
			}
			started = e.Seq
		}
	}
	return sealed, started, nil
}

func sameTime(s string, t time.Time) bool {
	v, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && v.Equal(t)
}

// checkTraffic checks that data/traffic holds sealed segments, each with
// its decrypted files and matching its segment.sealed entry, and nothing
// else. It returns the sealed segments' paths.
func checkTraffic(bag *Bag, sealed map[string]sealedEntry, rep *Report) ([]string, error) {
	expected := map[string]bool{}
	var segs []string
	for _, p := range sortedKeys(bag.Files) {
		name, ok := strings.CutPrefix(p, trafficDir+"/")
		if !ok || !strings.HasSuffix(name, ".age") {
			continue
		}
		outs, err := decryptedNames(name)
		if err != nil || strings.Contains(name, "/") {
			return nil, bad(p, "not a sealed segment name")
		}
		entry, ok := sealed[name]
		if !ok {
			return nil, bad(p, "no proved segment.sealed entry in %s names it", auditDir)
		}
		if got := hex.EncodeToString(digestOf(bag, p)); got != entry.sha256 || bag.Files[p] != entry.size {
			return nil, bad(p, "%d bytes with SHA-256 %s; the audit log recorded %d bytes with %s when it was sealed",
				bag.Files[p], got, entry.size, displayName(entry.sha256))
		}
		for _, o := range outs {
			dp := trafficDir + "/" + o
			if _, ok := bag.Files[dp]; !ok {
				return nil, bad(dp, "missing: the decrypted content of %s", name)
			}
			expected[dp] = true
		}
		expected[p] = true
		segs = append(segs, p)
	}
	for _, p := range sortedKeys(bag.Files) {
		if strings.HasPrefix(p, trafficDir+"/") && !expected[p] {
			return nil, bad(p, "not the sealed or decrypted form of a segment in the bundle")
		}
	}
	rep.Segments = len(segs)
	return segs, nil
}

// checkCustody checks that custody.json is carrel's, names the order and
// window of bag-info.txt, and that every digest it gives agrees with the
// verified manifest.
func checkCustody(fsys fs.FS, bag *Bag, order string, win Window) error {
	raw, err := readSmall(fsys, custodyFile, maxTagFile)
	if err != nil {
		return bad(custodyFile, "%v", err)
	}
	var c Custody
	if err := json.Unmarshal(raw, &c); err != nil {
		return bad(custodyFile, "not JSON: %v", err)
	}
	if c.Format != custodyFormat {
		return bad(custodyFile, "format %q, want %q", truncate(c.Format, 40), custodyFormat)
	}
	if c.Order.Ref != order || !c.Window.From.Equal(win.From) || !c.Window.To.Equal(win.To) {
		return bad(custodyFile, "names the order %q and the window %s – %s; bag-info.txt says %q and %s – %s",
			truncate(c.Order.Ref, 80), c.Window.From.Format(timeLayout), c.Window.To.Format(timeLayout),
			order, win.From.Format(timeLayout), win.To.Format(timeLayout))
	}
	for _, s := range c.Segments {
		for _, f := range append([]FileJSON{s.Sealed}, s.Content...) {
			if got := hex.EncodeToString(digestOf(bag, f.Path)); got != f.SHA256 || bag.Files[f.Path] != f.Size {
				return bad(custodyFile, "gives %s as %d bytes with SHA-256 %q; the bag holds %d bytes with %s",
					displayName(f.Path), f.Size, truncate(f.SHA256, 140), bag.Files[f.Path], got)
			}
		}
	}
	return nil
}
