package audit

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Kind names one sort of audit entry. The set is closed: every Kind is
// declared in kinds.go together with the fields it may carry, and Record
// refuses anything else. A Kind's string is part of the wire form of an
// entry and may never change once released.
type Kind string

// FieldType says how a field's value is written. Values are always stored
// as canonical strings so that the leaf hash of an entry never depends on
// how a Go value happened to be formatted.
type FieldType int

const (
	// TypeToken is a short machine word: an id, a name of a component, a
	// reason code. Never free text typed by a person about a patron.
	TypeToken FieldType = iota + 1
	// TypeInt is a base-10 signed integer.
	TypeInt
	// TypeTime is RFC 3339 in UTC with nanoseconds trimmed of trailing zeros.
	TypeTime
	// TypeHash is a lowercase hexadecimal digest.
	TypeHash
	// TypeText is a bounded message written by carrel itself (for example
	// the list of config keys that failed validation). It must never carry
	// values copied from traffic or from booking requests.
	TypeText
)

// Field is one typed key/value of an Event. Build fields with the
// constructors (Token, Int, Time, Hash, Text) so the value is canonical.
type Field struct {
	Key   string
	Type  FieldType
	Value string
}

// Token returns a TypeToken field.
func Token(key, v string) Field { return Field{Key: key, Type: TypeToken, Value: v} }

// Int returns a TypeInt field.
func Int(key string, v int64) Field {
	return Field{Key: key, Type: TypeInt, Value: strconv.FormatInt(v, 10)}
}

// Time returns a TypeTime field.
func Time(key string, t time.Time) Field {
	return Field{Key: key, Type: TypeTime, Value: t.UTC().Format(time.RFC3339Nano)}
}

// Hash returns a TypeHash field holding sum in lowercase hexadecimal.
func Hash(key string, sum []byte) Field {
	return Field{Key: key, Type: TypeHash, Value: hex.EncodeToString(sum)}
}

// Text returns a TypeText field.
func Text(key, v string) Field { return Field{Key: key, Type: TypeText, Value: v} }

// Event is what a component asks the audit log to record. The log adds the
// sequence number and the time.
type Event struct {
	Kind   Kind
	Actor  string // the account or component that caused the event, e.g. "service", "uid:0"
	Fields []Field

	// Once makes Record idempotent when set: recording a second event with
	// the same Once returns the sequence number of the first and adds
	// nothing. Components that write a change to their own database and then
	// forward it to the audit log (an outbox) use it so that a crash between
	// the two steps neither loses nor doubles the entry. Once is not part of
	// the hashed entry.
	Once string
}

// Recorder is the one thing other packages need from the audit log. *Log
// implements it; tests may use a Recorder backed by a real Log in a
// temporary folder.
type Recorder interface {
	Record(ctx context.Context, e Event) (seq int64, err error)
}

// Check reports whether e is allowed by the closed set of kinds: a known
// kind, an actor, only declared fields with their declared types, each at
// most once, required fields present, values within bounds.
func (e Event) Check() error {
	spec, ok := kinds[e.Kind]
	if !ok {
		return fmt.Errorf("audit: unknown event kind %q", e.Kind)
	}
	if e.Actor == "" || len(e.Actor) > maxToken {
		return fmt.Errorf("audit: %s: actor must be 1..%d bytes", e.Kind, maxToken)
	}
	seen := make(map[string]bool, len(e.Fields))
	for _, f := range e.Fields {
		want, ok := spec.fields[f.Key]
		if !ok {
			return fmt.Errorf("audit: %s: field %q is not declared for this kind", e.Kind, f.Key)
		}
		if want.typ != f.Type {
			return fmt.Errorf("audit: %s: field %q has the wrong type", e.Kind, f.Key)
		}
		if seen[f.Key] {
			return fmt.Errorf("audit: %s: field %q given twice", e.Kind, f.Key)
		}
		seen[f.Key] = true
		if err := checkValue(f); err != nil {
			return fmt.Errorf("audit: %s: field %q: %w", e.Kind, f.Key, err)
		}
	}
	for key, fs := range spec.fields {
		if fs.required && !seen[key] {
			return fmt.Errorf("audit: %s: required field %q missing", e.Kind, key)
		}
	}
	return nil
}

const (
	maxToken = 128
	maxText  = 2048
)

func checkValue(f Field) error {
	switch f.Type {
	case TypeToken:
		if f.Value == "" || len(f.Value) > maxToken {
			return fmt.Errorf("token must be 1..%d bytes", maxToken)
		}
		for _, r := range f.Value {
			if r <= ' ' || r == 0x7f {
				return fmt.Errorf("token may not contain spaces or control characters")
			}
		}
	case TypeInt:
		// Only the form Int writes: "+5" or "007" would be a second
		// spelling of one value in a hashed entry.
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != f.Value {
			return fmt.Errorf("not a base-10 integer in canonical form")
		}
	case TypeTime:
		t, err := time.Parse(time.RFC3339Nano, f.Value)
		if err != nil || t.UTC().Format(time.RFC3339Nano) != f.Value {
			return fmt.Errorf("not an RFC 3339 UTC time as Time writes it")
		}
	case TypeHash:
		if len(f.Value) == 0 || len(f.Value) > 128 || len(f.Value)%2 != 0 {
			return fmt.Errorf("hash must be 2..128 hex digits, an even number")
		}
		for i := 0; i < len(f.Value); i++ {
			if c := f.Value[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return fmt.Errorf("hash is not lowercase hex")
			}
		}
	case TypeText:
		if len(f.Value) > maxText {
			return fmt.Errorf("text longer than %d bytes", maxText)
		}
	default:
		return fmt.Errorf("unknown field type %d", f.Type)
	}
	return nil
}
