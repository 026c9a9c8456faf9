package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/seal"
)

// ErrBadBag is what every verification failure matches.
var ErrBadBag = errors.New("the bundle does not verify")

// ErrUnfinished is what a VerifyError also matches when the bundle has no
// signature: its export was interrupted before it finished.
var ErrUnfinished = errors.New("the bundle is unfinished")

// VerifyError names the first problem Verify found.
type VerifyError struct {
	What string // the file or part of the bag, as it is named in the bag
	Why  string

	unfinished bool
}

// Error names the file quoted when its name holds anything a terminal
// could act on: names come from the bag.
func (e *VerifyError) Error() string { return displayName(e.What) + ": " + e.Why }

// Is makes errors.Is(err, ErrBadBag) true, and errors.Is(err,
// ErrUnfinished) for a bundle that was never signed.
func (e *VerifyError) Is(target error) bool {
	return target == ErrBadBag || target == ErrUnfinished && e.unfinished
}

func bad(what, format string, a ...any) error {
	return &VerifyError{What: what, Why: fmt.Sprintf(format, a...)}
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Identities, when given, are the head librarian's: Verify then also
	// decrypts every sealed segment and checks that the decrypted files are
	// exactly its content in the window.
	Identities []age.Identity
	// WitnessKeys, when given, are witness verifier keys from the
	// witnesses' operators: the bundle's cosigned checkpoint is checked
	// with them (and WitnessQuorum) instead of the keys it carries, and a
	// bundle without one fails.
	WitnessKeys   []string
	WitnessQuorum int
}

// Report is what a bundle that verifies holds.
type Report struct {
	Files      int   // payload files
	Bytes      int64 // payload bytes
	Entries    int   // audit entries proved
	Segments   int   // sealed segments, each matching its segment.sealed entry
	Decrypted  bool  // the decrypted content was checked against the sealed segments
	Order      string
	Checkpoint string // origin and size of the checkpoint the entries were proved against
	Verifier   string // the verifier key the bundle carries
	// TagSHA256 is the SHA-256 of tagmanifest-sha256.txt: the export.end
	// entry in the PC's audit log carries it, which ties the whole bag,
	// bookings.csv included, to the log.
	TagSHA256 string
	EndSeq    int64  // the export.end entry of the signature
	SignedBy  string // origin and size of the checkpoint the signature was proved against
	// Witnessed names the checkpoint the PC's witnesses cosigned and who
	// cosigned it ("" when the bundle carries none), and WitnessKeysFrom
	// where the keys checked came from.
	Witnessed       string
	WitnessKeysFrom string
}

// VerifyDir verifies the bundle in dir. Nothing outside dir is read, and
// inside it only folders and regular files are opened (dirFS).
func VerifyDir(dir string, opts VerifyOptions) (*Report, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the bundle: %w", err)
	}
	defer root.Close()
	return Verify(dirFS{root}, opts)
}

// Verify checks the bag at the root of fsys and returns an error naming
// the first problem (matching ErrBadBag), in this order:
//
//  1. the structure: bagit.txt, bag-info.txt, sha256 and sha512 manifests
//     and tag manifests, no link or special file, no path outside the bag;
//     the signature present (else the bundle is unfinished: ErrUnfinished);
//  2. completeness: every file under data/ in every manifest and every
//     listed file present; every other file but the signature a tag file
//     listed in every tag manifest; Payload-Oxum;
//  3. every digest of every tag file, then of every payload file;
//  4. the signature: the export.end entry proved against a checkpoint
//     signed with the bundle's verifier key, extending the checkpoint of
//     the audit entries, and recording this tag manifest's SHA-256, this
//     order and this payload's size;
//  5. the audit: every entry's inclusion proof against the bundle's
//     checkpoint and verifier key, the export.start entry naming this order
//     and window, and every sealed segment matching the size and SHA-256 of
//     its proved segment.sealed entry;
//  6. the witnesses (witness.go): a cosigned checkpoint, when the bundle
//     carries one, is the log's, cosigned by the quorum of the witness
//     keys (the bundle's, or VerifyOptions.WitnessKeys), and the entries'
//     checkpoint extends it; with WitnessKeys a bundle without one fails;
//  7. with identities: every decrypted file equals the sealed segment's
//     content in the window.
//
// What it cannot tell: whether the verifier key is the PC's. Whoever holds
// a key can make a bundle that verifies with it; the key must be compared
// with the one the head librarian keeps off the PC (Report.Verifier).
func Verify(fsys fs.FS, opts VerifyOptions) (*Report, error) {
	bag, err := ReadBag(fsys)
	if err != nil {
		return nil, &VerifyError{What: "bag", Why: err.Error()}
	}
	switch ok, err := hasSignature(bag); {
	case err != nil:
		return nil, err
	case !ok:
		return nil, &VerifyError{What: signatureDir + "/", unfinished: true,
			Why: "missing: the bundle was never signed (the export.end entry, its proof and a checkpoint), so its export was interrupted before it finished; it is not evidence (on the PC, `carrel export clean` removes it; export again)"}
	}
	return verifyBag(fsys, bag, opts, true)
}

// verifyBag runs the checks after the structure. Only tests leave out the
// signature (withSignature false): to show that the checks behind it catch what
// they catch even in a bag re-signed by whoever holds a key.
func verifyBag(fsys fs.FS, bag *Bag, opts VerifyOptions, withSignature bool) (*Report, error) {
	rep := &Report{}
	if err := checkComplete(bag, rep); err != nil {
		return nil, err
	}
	if err := checkDigests(fsys, bag); err != nil {
		return nil, err
	}
	var sig *signed
	if withSignature {
		var err error
		if sig, err = checkSignature(fsys, bag, rep); err != nil {
			return nil, err
		}
	}
	c, err := checkContent(fsys, bag, opts, rep)
	if err != nil {
		return nil, err
	}
	if sig != nil && c.startSeq >= sig.endSeq {
		return nil, bad(sigEntryFile, "export.end is entry %d, not after the export.start entry %d", sig.endSeq, c.startSeq)
	}
	if len(opts.Identities) > 0 {
		if err := checkDecrypted(fsys, bag, c, opts.Identities); err != nil {
			return nil, err
		}
		rep.Decrypted = true
	}
	return rep, nil
}

func checkComplete(bag *Bag, rep *Report) error {
	for _, alg := range algorithms {
		if _, ok := bag.Manifests[alg]; !ok {
			return bad("manifest-"+alg+".txt", "missing")
		}
		if _, ok := bag.TagManifests[alg]; !ok {
			return bad("tagmanifest-"+alg+".txt", "missing")
		}
	}
	payload := map[string]bool{}
	for p, size := range bag.Files {
		if strings.HasPrefix(p, "data/") {
			payload[p] = true
			rep.Files++
			rep.Bytes += size
		}
	}
	for _, alg := range sortedKeys(bag.Manifests) {
		name := "manifest-" + alg + ".txt"
		listed := map[string]bool{}
		for _, l := range bag.Manifests[alg] {
			if !strings.HasPrefix(l.Path, "data/") {
				return bad(name, "lists %s, which is outside data/", displayName(l.Path))
			}
			if !payload[l.Path] {
				return bad(l.Path, "listed in %s but missing from the bag", name)
			}
			listed[l.Path] = true
		}
		for _, p := range sortedKeys(payload) {
			if !listed[p] {
				return bad(p, "not listed in %s: a file added after the export", name)
			}
		}
	}
	tagFiles := map[string]bool{}
	for p := range bag.Files {
		if !strings.HasPrefix(p, "data/") && !isTagManifest(p) && !strings.HasPrefix(p, signatureDir+"/") {
			tagFiles[p] = true
		}
	}
	for _, alg := range sortedKeys(bag.TagManifests) {
		name := "tagmanifest-" + alg + ".txt"
		listed := map[string]bool{}
		for _, l := range bag.TagManifests[alg] {
			switch {
			case strings.HasPrefix(l.Path, "data/"):
				return bad(name, "lists the payload file %s", displayName(l.Path))
			case isTagManifest(l.Path):
				return bad(name, "lists the tag manifest %s", displayName(l.Path))
			case strings.HasPrefix(l.Path, signatureDir+"/"):
				return bad(name, "lists %s, which is written after the tag manifest", displayName(l.Path))
			case !tagFiles[l.Path]:
				return bad(l.Path, "listed in %s but missing from the bag", name)
			}
			listed[l.Path] = true
		}
		for _, p := range sortedKeys(tagFiles) {
			if !listed[p] {
				return bad(p, "not listed in %s: a file added after the export", name)
			}
		}
	}
	oxum, ok, err := lookup(bag.Info, "Payload-Oxum")
	if err != nil {
		return bad("bag-info.txt", "%v", err)
	}
	if !ok {
		return bad("bag-info.txt", "no Payload-Oxum")
	}
	if want := fmt.Sprintf("%d.%d", rep.Bytes, rep.Files); oxum != want {
		return bad("bag-info.txt", "Payload-Oxum is %s, but the payload holds %d bytes in %d files", displayName(oxum), rep.Bytes, rep.Files)
	}
	return nil
}

func isTagManifest(p string) bool {
	return !strings.Contains(p, "/") && strings.HasPrefix(p, "tagmanifest-") && strings.HasSuffix(p, ".txt")
}

// checkDigests hashes every file once with every algorithm: tag files
// first (they are small and say what the payload should be), then the
// payload, both in path order.
func checkDigests(fsys fs.FS, bag *Bag) error {
	want := map[string]map[string][]byte{} // path → alg → digest
	note := func(ms map[string][]manifestLine) {
		for alg, lines := range ms {
			for _, l := range lines {
				if want[l.Path] == nil {
					want[l.Path] = map[string][]byte{}
				}
				want[l.Path][alg] = l.Sum
			}
		}
	}
	note(bag.TagManifests)
	note(bag.Manifests)
	var tags, payload []string
	for _, p := range sortedKeys(want) {
		if strings.HasPrefix(p, "data/") {
			payload = append(payload, p)
		} else {
			tags = append(tags, p)
		}
	}
	files := append(tags, payload...)
	return forEach(context.Background(), len(files), func(i int) error {
		p := files[i]
		got, err := digests(fsys, p)
		if err != nil {
			return bad(p, "%v", err)
		}
		for _, alg := range sortedKeys(want[p]) {
			if !bytes.Equal(got[alg], want[p][alg]) {
				return bad(p, "%s is %x, the manifest says %x: the file was changed after the export", strings.ToUpper(alg), got[alg], want[p][alg])
			}
		}
		return nil
	})
}

// digests returns a file's SHA-256 and SHA-512.
func digests(fsys fs.FS, p string) (map[string][]byte, error) {
	f, err := openRegular(fsys, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h256, h512 := sha256.New(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(h256, h512), f); err != nil {
		return nil, err
	}
	return map[string][]byte{"sha256": h256.Sum(nil), "sha512": h512.Sum(nil)}, nil
}

// digestOf returns the SHA-256 a verified manifest gives for p.
func digestOf(bag *Bag, p string) []byte {
	for _, l := range bag.Manifests["sha256"] {
		if l.Path == p {
			return l.Sum
		}
	}
	return nil
}

// content is what checkContent learned for the decryption check.
type content struct {
	win      Window
	segments []string // data/traffic/*.age paths
	startSeq int64    // the export.start entry
}

// checkDecrypted decrypts every sealed segment and compares its content in
// the window with the bundle's decrypted files.
func checkDecrypted(fsys fs.FS, bag *Bag, c *content, ids []age.Identity) error {
	return forEach(context.Background(), len(c.segments), func(i int) error {
		return checkSegment(fsys, bag, c, ids, c.segments[i])
	})
}

// checkSegment decrypts one sealed segment and compares its content in the
// window with the bundle's decrypted files.
func checkSegment(fsys fs.FS, bag *Bag, c *content, ids []age.Identity, p string) error {
	name := path.Base(p)
	outs, _ := decryptedNames(name) // checked by checkContent
	hs := make([]hash.Hash, len(outs))
	ws := make([]io.Writer, len(outs))
	for i := range outs {
		hs[i] = sha256.New()
		ws[i] = hs[i]
	}
	f, err := openRegular(fsys, p)
	if err != nil {
		return bad(p, "%v", err)
	}
	plain, err := age.Decrypt(f, ids...)
	if err == nil {
		n, _ := seal.ParseName(name)
		_, err = restrict(n.Format, name, plain, c.win, ws)
	}
	f.Close()
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return bad(p, "the identity given cannot decrypt it: it was sealed to other keys")
	}
	if err != nil {
		return bad(p, "decrypting: %v", err)
	}
	for i, o := range outs {
		dp := path.Join(path.Dir(p), o)
		if !bytes.Equal(hs[i].Sum(nil), digestOf(bag, dp)) {
			return bad(dp, "is not the content of %s in the window %s – %s", name,
				c.win.From.Format(timeLayout), c.win.To.Format(timeLayout))
		}
	}
	return nil
}

const timeLayout = "2006-01-02T15:04:05.999999999Z07:00"

// seqOf reads the sequence number from an entry or proof file name.
func seqOf(p, suffix string) (int64, bool) {
	base, ok := strings.CutSuffix(path.Base(p), suffix)
	if !ok || len(base) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(base, 10, 64)
	return n, err == nil && n >= 0
}
