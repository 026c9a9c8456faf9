package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// MaxBody is the largest request body accepted. Every valid request fits in
// a few hundred bytes.
const MaxBody = 4 << 10

// ErrBadRequest is wrapped by every decoding error.
var ErrBadRequest = errors.New("bad request")

// decode reads one JSON object from r into v, strictly: at most MaxBody
// bytes, no unknown fields, nothing after the object.
func decode(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(body) > MaxBody {
		return fmt.Errorf("%w: body larger than %d bytes", ErrBadRequest, MaxBody)
	}
	// encoding/json matches keys case-insensitively and keeps the last of
	// duplicate keys, so {"REF": …} or {"ref": "a", "ref": "b"} would be
	// read as something the client may not have meant (and two readers of
	// one body could disagree). The keys are checked first, as written.
	if err := checkKeys(body, jsonFields(v)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value", ErrBadRequest)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrBadRequest)
	}
	return nil
}

// checkKeys reads the top level of body as a JSON object and refuses any
// key that is not exactly one of fields, and any key given twice. Values
// are skipped, not judged: the decoder that follows does that.
func checkKeys(body []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("the body must be a JSON object: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("the body must be a JSON object, not %s", tokenKind(tok))
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok { // the decoder reports a non-string key as a syntax error; this is belt and braces
			return fmt.Errorf("object key is not a string")
		}
		if !contains(fields, key) {
			return fmt.Errorf("unknown field %q (keys are case-sensitive; known: %s)", key, strings.Join(fields, ", "))
		}
		if seen[key] {
			return fmt.Errorf("field %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func contains(fields []string, key string) bool {
	for _, f := range fields {
		if f == key {
			return true
		}
	}
	return false
}

func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		return "an array"
	}
	return "something else"
}

// jsonFields lists the JSON keys of the struct v points to, from its tags.
// The wire types are flat structs with a tag on every field.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// DecodeStart decodes a start request body. Field rules (reference format,
// time sanity) are checked by package booking when the request is served.
func DecodeStart(body []byte) (StartRequest, error) {
	var r StartRequest
	err := decodeBytes(body, &r)
	return r, err
}

// DecodeEnd decodes an end request body.
func DecodeEnd(body []byte) (EndRequest, error) {
	var r EndRequest
	err := decodeBytes(body, &r)
	return r, err
}

// DecodePatron decodes a patron look-up body.
func DecodePatron(body []byte) (PatronRequest, error) {
	var r PatronRequest
	err := decodeBytes(body, &r)
	return r, err
}
