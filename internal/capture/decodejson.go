package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// wireRecord mirrors the wire form for decoding. Pointers tell an absent
// key from a zero value, so a record missing a required key is refused
// instead of read as zero.
type wireRecord struct {
	Kind       *string `json:"kind"`
	TS         *string `json:"ts"`
	Proto      *string `json:"proto"`
	Src        *string `json:"src"`
	SrcPort    *uint16 `json:"sport"`
	Dst        *string `json:"dst"`
	DstPort    *uint16 `json:"dport"`
	First      *string `json:"first"`
	Last       *string `json:"last"`
	SrcPackets *uint64 `json:"src_packets"`
	SrcBytes   *uint64 `json:"src_bytes"`
	DstPackets *uint64 `json:"dst_packets"`
	DstBytes   *uint64 `json:"dst_bytes"`
	Name       *string `json:"name"`
	QType      *string `json:"qtype"`
	RCode      *string `json:"rcode"`
	Response   *bool   `json:"response"`
	SNI        *string `json:"sni"`
	Host       *string `json:"host"`
	QUIC       *bool   `json:"quic"`
	ECH        *bool   `json:"ech"`

	// plain holds the values readPlain points the fields at, so that it
	// allocates nothing per field.
	plain struct {
		str [12]string
		u16 [2]uint16
		u64 [4]uint64
		b   [3]bool
	}
}

// DecodeJSON reads one line of the wire form (with or without its '\n')
// back into a Record. Keys it does not know are ignored; a missing or
// malformed required key is an error naming the key.
func DecodeJSON(line []byte) (Record, error) {
	line = bytes.TrimRight(line, "\r\n")
	var w wireRecord
	if !w.readPlain(line) {
		w = wireRecord{}
		if err := json.Unmarshal(line, &w); err != nil {
			return Record{}, fmt.Errorf("decoding record: %w", err)
		}
	}
	var d decoder
	var r Record
	switch k := d.str("kind", w.Kind); k {
	case "flow":
		r.Kind = KindFlow
	case "dns":
		r.Kind = KindDNS
	case "tls":
		r.Kind = KindTLS
	case "http":
		r.Kind = KindHTTP
	default:
		if d.err == nil {
			d.fail("kind", fmt.Errorf("unknown kind %q", k))
		}
	}
	r.TS = d.time("ts", w.TS)
	if p, ok := parseProto(d.str("proto", w.Proto)); ok || d.err != nil {
		r.Proto = p
	} else {
		d.fail("proto", fmt.Errorf("unknown protocol %q", *w.Proto))
	}
	r.Src = d.addr("src", w.Src)
	r.SrcPort = d.u16("sport", w.SrcPort)
	r.Dst = d.addr("dst", w.Dst)
	r.DstPort = d.u16("dport", w.DstPort)
	switch r.Kind {
	case KindFlow:
		r.First = d.time("first", w.First)
		r.Last = d.time("last", w.Last)
		r.SrcPackets = d.u64("src_packets", w.SrcPackets)
		r.SrcBytes = d.u64("src_bytes", w.SrcBytes)
		r.DstPackets = d.u64("dst_packets", w.DstPackets)
		r.DstBytes = d.u64("dst_bytes", w.DstBytes)
	case KindDNS:
		r.Name = d.str("name", w.Name)
		if t, ok := parseQType(d.str("qtype", w.QType)); ok || d.err != nil {
			r.QType = t
		} else {
			d.fail("qtype", fmt.Errorf("unknown type %q", *w.QType))
		}
		if c, ok := parseRCode(d.str("rcode", w.RCode)); ok || d.err != nil {
			r.RCode = c
		} else {
			d.fail("rcode", fmt.Errorf("unknown rcode %q", *w.RCode))
		}
		if w.Response == nil {
			d.fail("response", errMissing)
		} else {
			r.Response = *w.Response
		}
	case KindTLS:
		r.SNI = d.str("sni", w.SNI)
		r.QUIC = w.QUIC != nil && *w.QUIC
		r.ECH = w.ECH != nil && *w.ECH
	case KindHTTP:
		r.Host = d.str("host", w.Host)
	}
	if d.err != nil {
		return Record{}, d.err
	}
	return r, nil
}

var errMissing = errors.New("missing")

// readPlain fills w from line when line is written as AppendJSON writes
// it: no whitespace, every key spelled exactly as its tag, strings of
// printable ASCII without escapes, numbers as plain unsigned integers. On
// such a line encoding/json would set exactly the same fields (a repeated
// key, too, keeps its last value), so the result is the same, several
// times faster: an export decodes every record it holds. Anything else
// (escapes, a key it does not know, a malformed value) makes it report
// false, and encoding/json reads the line instead.
func (w *wireRecord) readPlain(line []byte) bool {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return false
	}
	s := string(line[1 : len(line)-1]) // one copy; the string fields are slices of it
	for s != "" {
		// No known key holds a '"', so the first '":' ends the key.
		key, rest, ok := strings.Cut(s, `":`)
		if !ok || key == "" || key[0] != '"' {
			return false
		}
		key, s = key[1:], rest
		var v string
		quoted := strings.HasPrefix(s, `"`)
		if quoted {
			if v, s, ok = strings.Cut(s[1:], `"`); !ok {
				return false
			}
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e || v[i] == '\\' {
					return false
				}
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		switch key {
		case "kind":
			w.Kind, ok = plainString(&w.plain.str[0], v, quoted)
		case "ts":
			w.TS, ok = plainString(&w.plain.str[1], v, quoted)
		case "proto":
			w.Proto, ok = plainString(&w.plain.str[2], v, quoted)
		case "src":
			w.Src, ok = plainString(&w.plain.str[3], v, quoted)
		case "sport":
			w.SrcPort, ok = plainUint(&w.plain.u16[0], v, quoted)
		case "dst":
			w.Dst, ok = plainString(&w.plain.str[4], v, quoted)
		case "dport":
			w.DstPort, ok = plainUint(&w.plain.u16[1], v, quoted)
		case "first":
			w.First, ok = plainString(&w.plain.str[5], v, quoted)
		case "last":
			w.Last, ok = plainString(&w.plain.str[6], v, quoted)
		case "src_packets":
			w.SrcPackets, ok = plainUint(&w.plain.u64[0], v, quoted)
		case "src_bytes":
			w.SrcBytes, ok = plainUint(&w.plain.u64[1], v, quoted)
		case "dst_packets":
			w.DstPackets, ok = plainUint(&w.plain.u64[2], v, quoted)
		case "dst_bytes":
			w.DstBytes, ok = plainUint(&w.plain.u64[3], v, quoted)
		case "name":
			w.Name, ok = plainString(&w.plain.str[7], v, quoted)
		case "qtype":
			w.QType, ok = plainString(&w.plain.str[8], v, quoted)
		case "rcode":
			w.RCode, ok = plainString(&w.plain.str[9], v, quoted)
		case "response":
			w.Response, ok = plainBool(&w.plain.b[0], v, quoted)
		case "quic":
			w.QUIC, ok = plainBool(&w.plain.b[1], v, quoted)
		case "ech":
			w.ECH, ok = plainBool(&w.plain.b[2], v, quoted)
		case "sni":
			w.SNI, ok = plainString(&w.plain.str[10], v, quoted)
		case "host":
			w.Host, ok = plainString(&w.plain.str[11], v, quoted)
		default:
			ok = false
		}
		if !ok {
			return false
		}
		if s != "" {
			if s[0] != ',' || len(s) == 1 {
				return false
			}
			s = s[1:]
		}
	}
	return true
}

func plainBool(p *bool, v string, quoted bool) (*bool, bool) {
	if quoted || v != "true" && v != "false" {
		return nil, false
	}
	*p = v == "true"
	return p, true
}

func plainString(p *string, v string, quoted bool) (*string, bool) {
	*p = v
	return p, quoted
}

// plainUint reads a JSON number that is a plain unsigned integer and fits T.
func plainUint[T uint16 | uint64](p *T, v string, quoted bool) (*T, bool) {
	if quoted || len(v) > 1 && v[0] == '0' { // JSON allows no leading zero
		return nil, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || uint64(T(n)) != n {
		return nil, false
	}
	*p = T(n)
	return p, true
}

// decoder keeps the first problem so DecodeJSON reads straight through.
type decoder struct {
	err error
}

func (d *decoder) fail(key string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("decoding record: key %q: %w", key, err)
	}
}

func (d *decoder) str(key string, v *string) string {
	if v == nil {
		d.fail(key, errMissing)
		return ""
	}
	return *v
}

func (d *decoder) time(key string, v *string) time.Time {
	s := d.str(key, v)
	if d.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(key, err)
	}
	return t.UTC()
}

func (d *decoder) addr(key string, v *string) netip.Addr {
	s := d.str(key, v)
	if d.err != nil || s == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.fail(key, err)
	}
	return a
}

func (d *decoder) u16(key string, v *uint16) uint16 {
	if v == nil {
		d.fail(key, errMissing)
		return 0
	}
	return *v
}

func (d *decoder) u64(key string, v *uint64) uint64 {
	if v == nil {
		d.fail(key, errMissing)
		return 0
	}
	return *v
}

// RecordReader reads a stream of JSON Lines records, as found in a
// decrypted metadata segment.
type RecordReader struct {
	s    *bufio.Scanner
	line int
}

// maxLine bounds one record; real records are a few hundred bytes.
const maxLine = 64 << 10

// NewRecordReader returns a reader of the records in r.
func NewRecordReader(r io.Reader) *RecordReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), maxLine)
	return &RecordReader{s: s}
}

// Next returns the next record, or io.EOF after the last. An error names
// the line it is on.
func (rr *RecordReader) Next() (Record, error) {
	for rr.s.Scan() {
		rr.line++
		if len(bytes.TrimSpace(rr.s.Bytes())) == 0 {
			continue
		}
		r, err := DecodeJSON(rr.s.Bytes())
		if err != nil {
			return Record{}, fmt.Errorf("line %d: %w", rr.line, err)
		}
		return r, nil
	}
	if err := rr.s.Err(); err != nil {
		return Record{}, fmt.Errorf("line %d: reading records: %w", rr.line+1, err)
	}
	return Record{}, io.EOF
}
