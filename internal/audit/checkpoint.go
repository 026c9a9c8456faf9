package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the log's signed statement of its size and root hash.
//
// Its wire form is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint):
// a signed note (golang.org/x/mod/sumdb/note, Ed25519) whose text is exactly
//
//	<origin>\n
//	<tree size, decimal, no leading zeros>\n
//	<root hash, standard padded base64>\n
//
// followed by a blank line and one signature line
//
//	— <origin> <base64 of 4-byte key hash and 64-byte signature>\n
//
// The key that signs is named after the origin, so the signature line names
// the log. carrel writes no extension lines and refuses checkpoints that
// carry any.
//
// What may never change: the three body lines, their order and spelling, the
// hash (RFC 6962 via golang.org/x/mod/sumdb/tlog), and that the key name is
// the origin. Head librarians keep copies of checkpoints off the PC for
// years; a carrel that could not read them would make them worthless.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Note is the signed note as stored and as printed by
	// `carrel audit checkpoint`. It is empty for a body not yet signed.
	Note []byte
}

// maxNoteBytes bounds what OpenCheckpoint reads. A carrel checkpoint is
// about 200 bytes.
const maxNoteBytes = 8 << 10

// Body returns the C2SP checkpoint text: the part the signature covers.
func (c Checkpoint) Body() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, c.Root)
}

// String is a one-line description for messages.
func (c Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, c.Root)
}

// checkOrigin reports whether s can be both the first line of a checkpoint
// and the name of a note key.
func checkOrigin(s string) error {
	switch {
	case s == "" || len(s) > 255:
		return fmt.Errorf("origin must be 1..255 bytes")
	case !utf8.ValidString(s):
		return fmt.Errorf("origin %q is not UTF-8", s)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("origin %q contains spaces or control characters", s)
	case strings.Contains(s, "+"):
		return fmt.Errorf("origin %q contains '+', which a key name may not", s)
	}
	return nil
}

// parseCheckpointBody reads the C2SP body, accepting only the form Body
// writes.
func parseCheckpointBody(text string) (Checkpoint, error) {
	var c Checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, fmt.Errorf("checkpoint: body does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 {
		return c, fmt.Errorf("checkpoint: body has %d lines, want 3 (origin, size, root hash)", len(lines))
	}
	c.Origin = lines[0]
	if err := checkOrigin(c.Origin); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	var err error
	if c.Size, err = parseCount(lines[1]); err != nil {
		return c, fmt.Errorf("checkpoint: tree size: %w", err)
	}
	if c.Root, err = parseHash(lines[2]); err != nil {
		return c, fmt.Errorf("checkpoint: root hash: %w", err)
	}
	return c, nil
}

// parseHash reads a hash in canonical padded base64: a hash with stray
// padding bits would be another spelling of the same value.
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// sign returns c with Note set to the body signed by s.
func (c Checkpoint) sign(s note.Signer) (Checkpoint, error) {
	if s.Name() != c.Origin {
		return c, fmt.Errorf("signing checkpoint: key is named %q, not after the origin %q", s.Name(), c.Origin)
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Body())}, s)
	if err != nil {
		return c, fmt.Errorf("signing checkpoint: %w", err)
	}
	c.Note = msg
	return c, nil
}

// OpenCheckpoint parses a signed checkpoint and checks that it is signed by
// one of the verifier keys (the form `carrel audit key` prints) with the key
// named after its origin. It is what an independent verifier runs on a
// checkpoint the head librarian kept.
func OpenCheckpoint(msg []byte, verifierKeys ...string) (Checkpoint, error) {
	vs, err := verifiers(verifierKeys)
	if err != nil {
		return Checkpoint{}, err
	}
	return openCheckpoint(msg, vs)
}

func verifiers(keys []string) (note.Verifiers, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no verifier key given")
	}
	list := make([]note.Verifier, 0, len(keys))
	for _, k := range keys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), nil
}

func openCheckpoint(msg []byte, vs note.Verifiers) (Checkpoint, error) {
	if len(msg) > maxNoteBytes {
		return Checkpoint{}, fmt.Errorf("checkpoint: longer than %d bytes", maxNoteBytes)
	}
	if err := checkSignatureLines(msg); err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(msg, vs)
	if err != nil {
		return Checkpoint{}, noteError(err)
	}
	c, err := parseCheckpointBody(n.Text)
	if err != nil {
		return c, err
	}
	for _, s := range n.Sigs {
		if s.Name == c.Origin {
			c.Note = bytes.Clone(msg)
			return c, nil
		}
	}
	return Checkpoint{}, fmt.Errorf("checkpoint for %q is signed only by keys named otherwise (%s)", c.Origin, quoteName(n.Sigs[0].Name))
}

// checkSignatureLines refuses a note whose signature block has a line twice
// or a signature in non-canonical base64: note.Open would accept both, and
// then a changed byte in a stored checkpoint could go unnoticed.
func checkSignatureLines(msg []byte) error {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return fmt.Errorf("checkpoint: malformed note: no signature block")
	}
	seen := map[string]bool{}
	for _, line := range strings.SplitAfter(string(msg[i+2:]), "\n") {
		if line == "" {
			continue
		}
		rest, ok := strings.CutPrefix(line, "— ")
		_, b64, ok2 := strings.Cut(strings.TrimSuffix(rest, "\n"), " ")
		if !ok || !ok2 {
			return fmt.Errorf("checkpoint: malformed signature line %q", strings.TrimSpace(line))
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(b64); err != nil {
			return fmt.Errorf("checkpoint: signature is not canonical base64")
		}
		if seen[line] {
			return fmt.Errorf("checkpoint: signature line repeated")
		}
		seen[line] = true
	}
	return nil
}

// noteError turns the note package's errors into ones that say what it means
// for a checkpoint.
func noteError(err error) error {
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		var names []string
		for _, s := range unverified.Note.UnverifiedSigs {
			names = append(names, fmt.Sprintf("%s+%08x", quoteName(s.Name), s.Hash))
		}
		return fmt.Errorf("checkpoint is not signed by a trusted key (signed by %s)", strings.Join(names, ", "))
	case errors.As(err, &invalid):
		return fmt.Errorf("checkpoint signature by %s+%08x is invalid: the checkpoint was changed", quoteName(invalid.Name), invalid.Hash)
	default:
		return fmt.Errorf("checkpoint: %w", err)
	}
}

// quoteName returns a name read from a note or from audit.db (a key's
// name, a verifier key) as it is when it holds only printable characters
// other than spaces and quotes, and quoted otherwise: such names come
// from files anyone with access to the PC could have written, and go into
// messages printed on a terminal.
func quoteName(s string) string {
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r == ' ' || r == '"' || r == '\\' || !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
