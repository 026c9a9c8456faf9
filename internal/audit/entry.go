package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Entry is one recorded event: an Event plus the sequence number and the
// time the log gave it, and, from version 2 on, the size of the latest
// checkpoint the log had signed when it was recorded.
//
// Its wire form (Encode, ParseEntry) is the leaf of the Merkle tree: the
// leaf hash is tlog.RecordHash(Encode()), that is SHA-256 of a zero byte
// followed by the encoding, as in RFC 6962. Version 1 is, byte for byte:
//
//	carrel audit entry v1\n
//	seq <decimal, no leading zeros>\n
//	time <UTC, YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ, always nine digits>\n
//	kind <kind>\n
//	actor <escaped actor>\n
//	<key> <type> <escaped value>\n      one line per field, keys in byte order
//
// where <type> is token, int, time, hash or text, and escaping writes a
// backslash as \\, a newline as \n and every other control byte (below 0x20,
// and 0x7f) and every byte that is not part of valid UTF-8 as \xhh with
// lowercase hex; everything else is written as it is.
//
// Version 2, which Record writes, adds one line after seq:
//
//	carrel audit entry v2\n
//	seq <decimal>\n
//	checkpoint <decimal, no leading zeros>\n
//	time …\n                           the rest exactly as in version 1
//
// checkpoint is the size of the latest checkpoint stored when the entry was
// recorded (0 when there was none). In a log that was never cut back it is
// at most seq. It puts the list of signed checkpoints inside the tree:
// entry S records a checkpoint of size S exactly when one was signed, so
// checkpoints deleted from audit.db are missed by the entries that come
// after them (Verify).
//
// There is exactly one encoding of each entry: ParseEntry refuses anything
// Encode would not have written.
//
// What may never change: every byte of the v1 and v2 forms above, the names
// of the types, and the leaf hash. A different form needs a new first line
// ("carrel audit entry v3"), and entries already written keep theirs: a
// change here would make every existing log fail verification.
type Entry struct {
	// Version is the wire form: 1 or 2 (0 is read as 1).
	Version int
	Seq     int64 // the leaf index in the tree, from 0
	// Checkpoint is the size of the latest checkpoint stored when the entry
	// was recorded; version 2 only.
	Checkpoint int64
	Time       time.Time
	Kind       Kind
	Actor      string
	Fields     []Field // in key order
}

// entryMagic is the first line of an entry of each version, without its
// version number and newline.
const entryMagic = "carrel audit entry v"

// entryVersion is the version Record writes; stored beside each entry so a
// later carrel knows which form to recompute.
const entryVersion = 2

// maxEntryBytes bounds what ParseEntry reads: the largest entry Event.Check
// lets through is far smaller.
const maxEntryBytes = 64 << 10

// entryTimeLayout is fixed width so that stored times sort as strings.
const entryTimeLayout = "2006-01-02T15:04:05.000000000Z"

var typeNames = map[FieldType]string{
	TypeToken: "token", TypeInt: "int", TypeTime: "time", TypeHash: "hash", TypeText: "text",
}

func typeByName(s string) (FieldType, bool) {
	for t, n := range typeNames {
		if n == s {
			return t, true
		}
	}
	return 0, false
}

// String returns the type's name in the entry encoding.
func (t FieldType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Encode returns the canonical v1 encoding of e, the bytes its leaf hash is
// taken over. It fails only for an entry Record could never have written.
func (e Entry) Encode() ([]byte, error) {
	if e.Seq < 0 {
		return nil, fmt.Errorf("encoding audit entry: negative sequence number %d", e.Seq)
	}
	switch v := e.Version; {
	case v != 0 && v != 1 && v != 2:
		return nil, fmt.Errorf("encoding audit entry %d: unknown version %d", e.Seq, v)
	case v == 2 && e.Checkpoint < 0:
		return nil, fmt.Errorf("encoding audit entry %d: negative checkpoint size %d", e.Seq, e.Checkpoint)
	case v != 2 && e.Checkpoint != 0:
		return nil, fmt.Errorf("encoding audit entry %d: version 1 carries no checkpoint size", e.Seq)
	}
	if !isName(string(e.Kind), ".-") {
		return nil, fmt.Errorf("encoding audit entry %d: kind %q is not a kind name", e.Seq, e.Kind)
	}
	if e.Actor == "" {
		return nil, fmt.Errorf("encoding audit entry %d: empty actor", e.Seq)
	}
	b := make([]byte, 0, 256)
	b = append(b, entryMagic...)
	b = strconv.AppendInt(b, int64(max(e.Version, 1)), 10)
	b = append(b, "\nseq "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	if e.Version == 2 {
		b = append(b, "\ncheckpoint "...)
		b = strconv.AppendInt(b, e.Checkpoint, 10)
	}
	b = append(b, "\ntime "...)
	b = append(b, formatEntryTime(e.Time)...)
	b = append(b, "\nkind "...)
	b = append(b, e.Kind...)
	b = append(b, "\nactor "...)
	b = appendEscaped(b, e.Actor)
	b = append(b, '\n')
	for i, f := range e.Fields {
		if !isName(f.Key, "") {
			return nil, fmt.Errorf("encoding audit entry %d: field key %q is not a key name", e.Seq, f.Key)
		}
		if i > 0 && e.Fields[i-1].Key >= f.Key {
			return nil, fmt.Errorf("encoding audit entry %d: fields not in strict key order at %q", e.Seq, f.Key)
		}
		tn, ok := typeNames[f.Type]
		if !ok {
			return nil, fmt.Errorf("encoding audit entry %d: field %q has unknown type %d", e.Seq, f.Key, f.Type)
		}
		b = append(b, f.Key...)
		b = append(b, ' ')
		b = append(b, tn...)
		b = append(b, ' ')
		b = appendEscaped(b, f.Value)
		b = append(b, '\n')
	}
	return b, nil
}

// Hash returns the leaf hash of e.
func (e Entry) Hash() (tlog.Hash, error) {
	b, err := e.Encode()
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(b), nil
}

// ParseEntry reads the v1 or v2 encoding of an entry, for example one
// carried in an export bundle. It accepts only the canonical form: for any b
// it accepts, Encode of the result returns b again.
func ParseEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) > maxEntryBytes {
		return e, fmt.Errorf("audit entry: longer than %d bytes", maxEntryBytes)
	}
	first := firstLine(b)
	switch {
	case bytes.HasPrefix(b, []byte(entryMagic+"1\n")):
		e.Version = 1
	case bytes.HasPrefix(b, []byte(entryMagic+"2\n")):
		e.Version = 2
	case strings.HasSuffix(first, "\r") && (first == entryMagic+"1\r" || first == entryMagic+"2\r"):
		return e, fmt.Errorf("audit entry: lines end in CRLF; entries use LF (was the file converted?)")
	case strings.HasPrefix(first, "carrel audit entry "):
		return e, fmt.Errorf("audit entry: unsupported version %q", first)
	default:
		return e, fmt.Errorf("audit entry: does not start with %q", entryMagic+"1")
	}
	if b[len(b)-1] != '\n' {
		return e, fmt.Errorf("audit entry: does not end with a newline")
	}
	head := len(entryMagic) + 2
	if len(b) == head {
		return e, fmt.Errorf("audit entry: nothing after the first line")
	}
	lines := strings.Split(string(b[head:len(b)-1]), "\n")
	names := []string{"seq", "time", "kind", "actor"}
	if e.Version == 2 {
		names = []string{"seq", "checkpoint", "time", "kind", "actor"}
	}
	if len(lines) < len(names) {
		return e, fmt.Errorf("audit entry: %d lines after the first, want at least %d (%s)", len(lines), len(names), strings.Join(names, ", "))
	}
	header := make(map[string]string, len(names))
	for i, name := range names {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return e, fmt.Errorf("audit entry line %d: want %q", i+2, name+" …")
		}
		header[name] = v
	}
	var err error
	if e.Seq, err = parseCount(header["seq"]); err != nil {
		return e, fmt.Errorf("audit entry: seq: %w", err)
	}
	if e.Version == 2 {
		if e.Checkpoint, err = parseCount(header["checkpoint"]); err != nil {
			return e, fmt.Errorf("audit entry: checkpoint: %w", err)
		}
	}
	if e.Time, err = parseEntryTime(header["time"]); err != nil {
		return e, fmt.Errorf("audit entry: %w", err)
	}
	e.Kind = Kind(header["kind"])
	if e.Actor, err = unescape(header["actor"]); err != nil {
		return e, fmt.Errorf("audit entry: actor: %w", err)
	}
	for i, line := range lines[len(names):] {
		n := i + len(names) + 2
		key, rest, ok1 := strings.Cut(line, " ")
		tn, val, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 {
			return e, fmt.Errorf("audit entry line %d: want \"key type value\"", n)
		}
		typ, ok := typeByName(tn)
		if !ok {
			return e, fmt.Errorf("audit entry line %d: unknown field type %q", n, tn)
		}
		if val, err = unescape(val); err != nil {
			return e, fmt.Errorf("audit entry line %d: field %q: %w", n, key, err)
		}
		e.Fields = append(e.Fields, Field{Key: key, Type: typ, Value: val})
	}
	again, err := e.Encode()
	if err != nil {
		return Entry{}, fmt.Errorf("audit entry: %w", err)
	}
	if !bytes.Equal(again, b) {
		return Entry{}, fmt.Errorf("audit entry: not in canonical form")
	}
	return e, nil
}

// entryFromEvent builds the entry Record stores for ev, recorded when the
// latest checkpoint had size checkpoint.
func entryFromEvent(seq, checkpoint int64, t time.Time, ev Event) Entry {
	fs := append([]Field(nil), ev.Fields...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Key < fs[j].Key })
	return Entry{Version: entryVersion, Seq: seq, Checkpoint: checkpoint, Time: t.UTC().Round(0),
		Kind: ev.Kind, Actor: ev.Actor, Fields: fs}
}

func formatEntryTime(t time.Time) string { return t.UTC().Format(entryTimeLayout) }

// parseEntryTime accepts only the fixed-width form formatEntryTime writes, so
// that a stored time cannot be rewritten into another spelling of the same
// instant without changing the leaf.
func parseEntryTime(s string) (time.Time, error) {
	t, err := time.Parse(entryTimeLayout, s)
	if err != nil || formatEntryTime(t) != s {
		return time.Time{}, fmt.Errorf("time %q is not of the form %s", s, entryTimeLayout)
	}
	return t, nil
}

// parseCount reads a non-negative decimal without sign or leading zeros.
func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a non-negative decimal number", s)
	}
	return n, nil
}

// isName reports whether s is 1..64 bytes of [a-z0-9_] and the given extra
// bytes, starting with a letter: the shape of kinds and field keys.
func isName(s, extra string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// entryJSON is the JSON form of an entry, one object per line in `carrel
// audit list --json`. Fields are a key → value object: every value is the
// canonical string, and kinds.go says each key's type.
type entryJSON struct {
	Seq    int64             `json:"seq"`
	Time   string            `json:"time"`
	Kind   Kind              `json:"kind"`
	Actor  string            `json:"actor"`
	Fields map[string]string `json:"fields"`
}

// Value returns the value of e's field key, and whether e has that field.
func (e Entry) Value(key string) (string, bool) {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// MarshalJSON writes e for scripts and reports. It is not the hashed form.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: e.Kind, Actor: e.Actor,
		Fields: make(map[string]string, len(e.Fields))}
	for _, f := range e.Fields {
		j.Fields[f.Key] = f.Value
	}
	return json.Marshal(j)
}
