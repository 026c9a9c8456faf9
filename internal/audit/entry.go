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
// time the log gave it.
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
// lowercase hex; everything else is written as it is. There is exactly one
// encoding of each entry: ParseEntry refuses anything Encode would not have
// written.
//
// What may never change: every byte of the v1 form above, the names of the
// types, and the leaf hash. A different form needs a new first line
// ("carrel audit entry v2"), and entries already written keep theirs: a
// change here would make every existing log fail verification.
type Entry struct {
	Seq    int64 // the leaf index in the tree, from 0
	Time   time.Time
	Kind   Kind
	Actor  string
	Fields []Field // in key order
}

// entryMagic is the first line of a version 1 entry.
const entryMagic = "carrel audit entry v1\n"

// entryVersion is the version Record writes; stored beside each entry so a
// later carrel knows which form to recompute.
const entryVersion = 1

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
	if !isName(string(e.Kind), ".-") {
		return nil, fmt.Errorf("encoding audit entry %d: kind %q is not a kind name", e.Seq, e.Kind)
	}
	if e.Actor == "" {
		return nil, fmt.Errorf("encoding audit entry %d: empty actor", e.Seq)
	}
	b := make([]byte, 0, 256)
	b = append(b, entryMagic...)
	b = append(b, "seq "...)
	b = strconv.AppendInt(b, e.Seq, 10)
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

// ParseEntry reads the v1 encoding of an entry, for example one carried in
// an export bundle. It accepts only the canonical form: for any b it
// accepts, Encode of the result returns b again.
func ParseEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) > maxEntryBytes {
		return e, fmt.Errorf("audit entry: longer than %d bytes", maxEntryBytes)
	}
	if !bytes.HasPrefix(b, []byte(entryMagic)) {
		if bytes.HasPrefix(b, []byte("carrel audit entry v1\r\n")) {
			return e, fmt.Errorf("audit entry: lines end in CRLF; entries use LF (was the file converted?)")
		}
		if bytes.HasPrefix(b, []byte("carrel audit entry ")) {
			return e, fmt.Errorf("audit entry: unsupported version %q", firstLine(b))
		}
		return e, fmt.Errorf("audit entry: does not start with %q", strings.TrimSpace(entryMagic))
	}
	if b[len(b)-1] != '\n' {
		return e, fmt.Errorf("audit entry: does not end with a newline")
	}
	if len(b) == len(entryMagic) {
		return e, fmt.Errorf("audit entry: nothing after the first line")
	}
	lines := strings.Split(string(b[len(entryMagic):len(b)-1]), "\n")
	if len(lines) < 4 {
		return e, fmt.Errorf("audit entry: %d lines after the first, want at least 4 (seq, time, kind, actor)", len(lines))
	}
	header := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", fmt.Errorf("audit entry line %d: want %q", i+2, name+" …")
		}
		return v, nil
	}
	var err error
	var v string
	if v, err = header(0, "seq"); err != nil {
		return e, err
	}
	if e.Seq, err = parseCount(v); err != nil {
		return e, fmt.Errorf("audit entry line 2: seq: %w", err)
	}
	if v, err = header(1, "time"); err != nil {
		return e, err
	}
	if e.Time, err = parseEntryTime(v); err != nil {
		return e, fmt.Errorf("audit entry line 3: %w", err)
	}
	if v, err = header(2, "kind"); err != nil {
		return e, err
	}
	e.Kind = Kind(v)
	if v, err = header(3, "actor"); err != nil {
		return e, err
	}
	if e.Actor, err = unescape(v); err != nil {
		return e, fmt.Errorf("audit entry line 5: actor: %w", err)
	}
	for i, line := range lines[4:] {
		key, rest, ok1 := strings.Cut(line, " ")
		tn, val, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 {
			return e, fmt.Errorf("audit entry line %d: want \"key type value\"", i+6)
		}
		typ, ok := typeByName(tn)
		if !ok {
			return e, fmt.Errorf("audit entry line %d: unknown field type %q", i+6, tn)
		}
		if val, err = unescape(val); err != nil {
			return e, fmt.Errorf("audit entry line %d: field %q: %w", i+6, key, err)
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

// entryFromEvent builds the entry Record stores for ev.
func entryFromEvent(seq int64, t time.Time, ev Event) Entry {
	fs := append([]Field(nil), ev.Fields...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Key < fs[j].Key })
	return Entry{Seq: seq, Time: t.UTC().Round(0), Kind: ev.Kind, Actor: ev.Actor, Fields: fs}
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
