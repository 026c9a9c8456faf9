package seal

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
)

// Format is what a segment's plaintext holds.
type Format string

const (
	JSONL  Format = "jsonl"  // metadata records, one JSON object per line
	PCAPNG Format = "pcapng" // packets mode: a pcapng section per segment
)

func (f Format) valid() bool { return f == JSONL || f == PCAPNG }

// nameTime is the fixed-width UTC time in segment names: fixed width so
// that names of one case sort by time, no ':' so that Windows accepts them.
const nameTime = "20060102T150405.000Z"

const (
	sealedSuffix  = ".age"
	partialSuffix = ".partial"
	seqDigits     = 8
)

// Name is the parsed form of a segment file name
// <case>-<UTC time>-<seq>.<format>.age, e.g.
// case-7-20240501T120000.000Z-00000042.jsonl.age. The time is when the
// segment was opened; seq is unique within the store, so names never
// collide even when two segments open in the same millisecond. The form is
// part of what the exporter and the audit log see: never change it.
type Name struct {
	Case   string
	Opened time.Time
	Seq    int64
	Format Format
}

// String returns the file name of the sealed segment.
func (n Name) String() string {
	return fmt.Sprintf("%s-%s-%0*d.%s%s", n.Case, n.Opened.UTC().Format(nameTime), seqDigits, n.Seq, n.Format, sealedSuffix)
}

// ParseName parses a sealed segment's file name. It accepts exactly what
// Name.String produces, so that a name read from disk or from a command
// line can never point outside the traffic folder.
func ParseName(s string) (Name, error) {
	bad := func(why string) (Name, error) {
		return Name{}, fmt.Errorf("segment name %q: %s", s, why)
	}
	rest, ok := strings.CutSuffix(s, sealedSuffix)
	if !ok {
		return bad("does not end in " + sealedSuffix)
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return bad("has no format")
	}
	f := Format(rest[dot+1:])
	if !f.valid() {
		return bad("format is neither jsonl nor pcapng")
	}
	rest = rest[:dot]
	dash := strings.LastIndexByte(rest, '-')
	if dash < 0 || len(rest)-dash-1 != seqDigits {
		return bad(fmt.Sprintf("sequence number is not %d digits", seqDigits))
	}
	seq, err := strconv.ParseUint(rest[dash+1:], 10, 63)
	if err != nil || strings.ContainsAny(rest[dash+1:], "+-") {
		return bad("sequence number is not a number")
	}
	rest = rest[:dash]
	dash = strings.LastIndexByte(rest, '-')
	if dash < 0 {
		return bad("has no time")
	}
	t, err := time.Parse(nameTime, rest[dash+1:])
	if err != nil || t.Format(nameTime) != rest[dash+1:] {
		return bad("time is not " + nameTime)
	}
	id := rest[:dash]
	if !config.ValidCaseID(id) {
		return bad("case id is not letters, digits, '.', '_' or '-'")
	}
	return Name{Case: id, Opened: t, Seq: int64(seq), Format: f}, nil
}
