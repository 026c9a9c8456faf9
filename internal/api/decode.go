package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
