package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/carrel-lib/carrel/internal/capture"
)

// Restricting a decrypted segment to the window is done by the functions
// here, by the export and again by `carrel export verify --identity`, which
// compares their output with the bundle's files byte for byte. They must
// therefore depend on nothing but the segment's plaintext, the window and
// the segment's name: no version, host or clock.

// maxLine bounds one JSON Lines record; the wire form's longest record (a
// DNS name of 255 escaped bytes) is far shorter.
const maxLine = 1 << 20

// csvHeader is the column order of the decrypted records' CSV form: the
// wire form's keys in their order (capture.Record). A column a record kind
// does not have is empty.
var csvHeader = []string{"kind", "ts", "proto", "src", "sport", "dst", "dport",
	"first", "last", "src_packets", "src_bytes", "dst_packets", "dst_bytes",
	"name", "qtype", "rcode", "response", "sni", "host"}

// mnemonics are the wire form's text values that a CSV row shows as they
// are in the record; the rest come from the decoded capture.Record.
type mnemonics struct {
	Proto string `json:"proto"`
	QType string `json:"qtype"`
	RCode string `json:"rcode"`
}

// restrictJSONL copies the records of a metadata segment that fall in win
// to jsonl, line for line as in the segment, and writes each as a CSV row
// to csvOut. It returns how many records it kept. A line that is not a
// record is an error naming the line: a sealed segment is never expected to
// hold one.
func restrictJSONL(r io.Reader, win Window, jsonl, csvOut io.Writer) (int64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	cw := csv.NewWriter(csvOut)
	if err := cw.Write(csvHeader); err != nil {
		return 0, err
	}
	var kept int64
	row := make([]string, len(csvHeader))
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return kept, fmt.Errorf("line %d: %w", lineNo, err)
		}
		rec, err := capture.DecodeJSON(line)
		if err != nil {
			return kept, fmt.Errorf("line %d: %w", lineNo, err)
		}
		in := win.Contains(rec.TS)
		if rec.Kind == capture.KindFlow {
			in = win.Overlaps(rec.First, rec.Last)
		}
		if !in {
			continue
		}
		m, err := readMnemonics(line, rec.Kind)
		if err != nil {
			return kept, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if _, err := jsonl.Write(line); err != nil {
			return kept, err
		}
		csvRow(row, &rec, &m)
		if err := cw.Write(row); err != nil {
			return kept, err
		}
		kept++
	}
	cw.Flush()
	return kept, cw.Error()
}

// readLine returns the next line with its '\n'. A last line without one
// is returned as it is.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the buffer: collect it, within maxLine.
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > maxLine {
				return nil, fmt.Errorf("record longer than %d bytes", maxLine)
			}
			line, err = br.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err == io.EOF && len(line) > 0 {
		return line, nil
	}
	return line, err
}

// readMnemonics takes proto, qtype and rcode from a line DecodeJSON has
// accepted. capture.AppendJSON writes them as plain strings right after
// their keys; a line written otherwise is decoded the slow way.
func readMnemonics(line []byte, kind capture.Kind) (mnemonics, error) {
	var m mnemonics
	var ok bool
	if m.Proto, ok = plainString(line, `"proto":"`); !ok {
		return m, json.Unmarshal(line, &m)
	}
	if kind != capture.KindDNS {
		return m, nil
	}
	m.QType, ok = plainString(line, `"qtype":"`)
	if ok {
		m.RCode, ok = plainString(line, `"rcode":"`)
	}
	if !ok {
		return m, json.Unmarshal(line, &m)
	}
	return m, nil
}

// plainString returns the string value after key when it holds no escape.
func plainString(line []byte, key string) (string, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return "", false
	}
	v := line[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return "", false
	}
	return string(v[:end]), true
}

func csvRow(row []string, r *capture.Record, m *mnemonics) {
	clear(row)
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	row[0], row[1], row[2] = r.Kind.String(), ts(r.TS), m.Proto
	row[3], row[4] = r.Src.String(), u(uint64(r.SrcPort))
	row[5], row[6] = r.Dst.String(), u(uint64(r.DstPort))
	switch r.Kind {
	case capture.KindFlow:
		row[7], row[8] = ts(r.First), ts(r.Last)
		row[9], row[10], row[11], row[12] = u(r.SrcPackets), u(r.SrcBytes), u(r.DstPackets), u(r.DstBytes)
	case capture.KindDNS:
		row[13], row[14], row[15], row[16] = r.Name, m.QType, m.RCode, strconv.FormatBool(r.Response)
	case capture.KindTLS:
		row[17] = r.SNI
	case capture.KindHTTP:
		row[18] = r.Host
	}
}

// restrictPcapng writes the packets of a packets-mode segment whose
// timestamps fall in win as a new pcapng file with the segment's link type,
// snap length; packet bytes and times (to the nanosecond) are copied
// unchanged. The section comment names the segment and the window, so the
// file says what it is when opened alone. It returns how many packets it
// kept.
func restrictPcapng(r io.Reader, win Window, segment string, out io.Writer) (int64, error) {
	ng, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading pcapng: %w", err)
	}
	intf, err := ng.Interface(0)
	if err != nil {
		return 0, fmt.Errorf("reading pcapng: %w", err)
	}
	info := ng.SectionInfo()
	comment := fmt.Sprintf("packets of %s from %s to %s (carrel court-order export)",
		segment, win.From.UTC().Format(time.RFC3339Nano), win.To.UTC().Format(time.RFC3339Nano))
	if info.Comment != "" {
		comment = info.Comment + "; " + comment
	}
	// The writer always stores nanosecond times with no offset; the
	// reader has already applied the segment's resolution and offset.
	wi := pcapgo.NgInterface{Name: intf.Name, LinkType: intf.LinkType, SnapLength: intf.SnapLength, TimestampResolution: 9}
	w, err := pcapgo.NewNgWriterInterface(out, wi, pcapgo.NgWriterOptions{
		SectionInfo: pcapgo.NgSectionInfo{Application: info.Application, Comment: comment},
	})
	if err != nil {
		return 0, err
	}
	var kept int64
	for n := 1; ; n++ {
		data, ci, err := ng.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return kept, fmt.Errorf("packet %d: %w", n, err)
		}
		if !win.Contains(ci.Timestamp) {
			continue
		}
		ci.InterfaceIndex = 0
		if err := w.WritePacket(ci, data); err != nil {
			return kept, err
		}
		kept++
	}
	return kept, w.Flush()
}
