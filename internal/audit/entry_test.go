package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

// goldenEntry and goldenEntryBytes pin the v1 wire form of an entry. If
// this test fails, existing logs would stop verifying: do not update the
// expected bytes, add a v2 instead.
var goldenEntry = Entry{
	Seq:   7,
	Time:  time.Date(2026, 3, 1, 9, 30, 0, 500_000_000, time.UTC),
	Kind:  ConfigRejected,
	Actor: "service",
	Fields: []Field{
		Int("count", 2),
		Text("problems", "pc.id: empty\nversion: \\ \x01\x7f «ø» \xff"),
		{Key: "sha256", Type: TypeHash, Value: strings.Repeat("ab", 32)},
	},
}

const goldenEntryBytes = "carrel audit entry v1\n" +
	"seq 7\n" +
	"time 2026-03-01T09:30:00.500000000Z\n" +
	"kind config.rejected\n" +
	"actor service\n" +
	"count int 2\n" +
	`problems text pc.id: empty\nversion: \\ \x01\x7f «ø» \xff` + "\n" +
	"sha256 hash abababababababababababababababababababababababababababababababab\n"

// goldenLeafHash is SHA-256(0x00 || goldenEntryBytes).
const goldenLeafHash = "72258cfa6dae0726bf26eaa5f3e3f2c9c92677d8627e4353c9de14b6244a555f"

func TestEntryEncodeGolden(t *testing.T) {
	got, err := goldenEntry.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenEntryBytes {
		t.Fatalf("Encode() =\n%s\nwant\n%s", got, goldenEntryBytes)
	}
	h, err := goldenEntry.Hash()
	if err != nil {
		t.Fatal(err)
	}
	// The leaf hash is RFC 6962's: SHA-256 over a zero byte and the entry.
	independent := sha256.Sum256(append([]byte{0}, goldenEntryBytes...))
	if h != independent {
		t.Errorf("Hash() = %s; want SHA-256(0x00 || entry) = %x", hex.EncodeToString(h[:]), independent)
	}
	if hex.EncodeToString(h[:]) != goldenLeafHash {
		t.Errorf("Hash() = %s; want %s", hex.EncodeToString(h[:]), goldenLeafHash)
	}
	back, err := ParseEntry([]byte(goldenEntryBytes))
	if err != nil {
		t.Fatalf("ParseEntry(golden) = %v", err)
	}
	again, _ := back.Encode()
	if !bytes.Equal(again, got) || !back.Time.Equal(goldenEntry.Time) || back.Actor != goldenEntry.Actor {
		t.Errorf("ParseEntry(golden) = %+v; does not round-trip", back)
	}
}

// goldenEntryV2Bytes pins the v2 wire form: the v1 entry above, recorded
// when the latest checkpoint had size 6. The leaf hash was computed
// independently (Python hashlib) over the same bytes. Never update it.
const (
	goldenEntryV2Bytes = "carrel audit entry v2\n" +
		"seq 7\n" +
		"checkpoint 6\n" +
		"time 2026-03-01T09:30:00.500000000Z\n" +
		"kind config.rejected\n" +
		"actor service\n" +
		"count int 2\n" +
		`problems text pc.id: empty\nversion: \\ \x01\x7f «ø» \xff` + "\n" +
		"sha256 hash abababababababababababababababababababababababababababababababab\n"
	goldenLeafHashV2 = "55db0d68de1de235580c65f264035cf35e90d11158f18646bf3352f38b1a24c6"
)

func TestEntryEncodeGoldenV2(t *testing.T) {
	e := goldenEntry
	e.Version, e.Checkpoint = 2, 6
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenEntryV2Bytes {
		t.Fatalf("Encode() =\n%s\nwant\n%s", got, goldenEntryV2Bytes)
	}
	h, err := e.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(h[:]) != goldenLeafHashV2 {
		t.Errorf("Hash() = %s; want %s", hex.EncodeToString(h[:]), goldenLeafHashV2)
	}
	back, err := ParseEntry([]byte(goldenEntryV2Bytes))
	if err != nil {
		t.Fatalf("ParseEntry(golden v2) = %v", err)
	}
	if back.Version != 2 || back.Checkpoint != 6 || back.Seq != 7 {
		t.Errorf("ParseEntry(golden v2) = %+v; want version 2, checkpoint 6, seq 7", back)
	}
	// What Record writes is this form.
	if rec := entryFromEvent(7, 6, goldenEntry.Time, Event{Kind: goldenEntry.Kind, Actor: goldenEntry.Actor,
		Fields: []Field{goldenEntry.Fields[2], goldenEntry.Fields[0], goldenEntry.Fields[1]}}); !slices.Equal(must(rec.Encode()), got) {
		t.Errorf("entryFromEvent(…).Encode() = %q; want the v2 golden", must(rec.Encode()))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestParseEntryRoundTrip(t *testing.T) {
	for i := 0; i < 10; i++ {
		ev := sampleEvent(i)
		e := entryFromEvent(int64(i*1000), int64(i*999), time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC), ev)
		b, err := e.Encode()
		if err != nil {
			t.Fatalf("Encode(sample %d) = %v", i, err)
		}
		back, err := ParseEntry(b)
		if err != nil {
			t.Fatalf("ParseEntry(%q) = %v", b, err)
		}
		if back.Seq != e.Seq || !back.Time.Equal(e.Time) || back.Kind != e.Kind || back.Actor != e.Actor || len(back.Fields) != len(e.Fields) {
			t.Fatalf("ParseEntry(Encode(%+v)) = %+v", e, back)
		}
		for j := range e.Fields {
			if back.Fields[j] != e.Fields[j] {
				t.Errorf("ParseEntry(sample %d) field %d = %+v; want %+v", i, j, back.Fields[j], e.Fields[j])
			}
		}
	}
}

func TestParseEntryRejects(t *testing.T) {
	g := goldenEntryBytes
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "does not start with"},
		{"other version", strings.Replace(g, "v1", "v3", 1), "unsupported version"},
		{"v2 without checkpoint", strings.Replace(g, "v1", "v2", 1), `want "checkpoint`},
		{"v1 with checkpoint", strings.Replace(goldenEntryV2Bytes, "v2", "v1", 1), `want "time`},
		{"v2 checkpoint leading zero", strings.Replace(goldenEntryV2Bytes, "checkpoint 6", "checkpoint 06", 1), "checkpoint"},
		{"v2 checkpoint negative", strings.Replace(goldenEntryV2Bytes, "checkpoint 6", "checkpoint -6", 1), "checkpoint"},
		{"v2 checkpoint after time", strings.Replace(goldenEntryV2Bytes, "checkpoint 6\ntime 2026-03-01T09:30:00.500000000Z\n", "time 2026-03-01T09:30:00.500000000Z\ncheckpoint 6\n", 1), `want "checkpoint`},
		{"v2 CRLF", strings.ReplaceAll(goldenEntryV2Bytes, "\n", "\r\n"), "CRLF"},
		{"no final newline", strings.TrimSuffix(g, "\n"), "does not end with a newline"},
		{"CRLF", strings.ReplaceAll(g, "\n", "\r\n"), "CRLF"},
		{"too short", "carrel audit entry v1\nseq 1\n", "want at least 4"},
		{"first line only", "carrel audit entry v1\n", "nothing after"},
		{"seq leading zero", strings.Replace(g, "seq 7", "seq 07", 1), "seq"},
		{"seq negative", strings.Replace(g, "seq 7", "seq -7", 1), "seq"},
		{"seq plus", strings.Replace(g, "seq 7", "seq +7", 1), "seq"},
		{"time short fraction", strings.Replace(g, ".500000000Z", ".5Z", 1), "not of the form"},
		{"time offset", strings.Replace(g, "500000000Z", "500000000+00:00", 1), "not of the form"},
		{"header order", strings.Replace(g, "seq 7\ntime", "time", 1), "want \"seq"},
		{"kind upper", strings.Replace(g, "config.rejected", "Config.rejected", 1), "not a kind name"},
		{"empty actor", strings.Replace(g, "actor service", "actor ", 1), "empty actor"},
		{"fields unordered", strings.Replace(g, "count int 2\n", "", 1) + "count int 2\n", "strict key order"},
		{"field twice", strings.Replace(g, "count int 2\n", "count int 2\ncount int 2\n", 1), "strict key order"},
		{"unknown type", strings.Replace(g, "count int", "count integer", 1), "unknown field type"},
		{"no value separator", strings.Replace(g, "count int 2", "count", 1), "key type value"},
		{"key with dash", strings.Replace(g, "count int", "co-unt int", 1), "not a key name"},
		{"escape not canonical", strings.Replace(g, "pc.id", `\x70c.id`, 1), "canonical"},
		{"upper hex escape", strings.Replace(g, `\x7f`, `\x7F`, 1), "bad \\x escape"},
		{"unknown escape", strings.Replace(g, `\n`, `\t`, 1), "unknown escape"},
		{"raw control byte", strings.Replace(g, `\x01`, "\x01", 1), "canonical"},
		{"raw invalid utf8", strings.Replace(g, `\xff`, "\xff", 1), "canonical"},
		{"short escape", strings.Replace(g, `\xff`+"\n", `\xf`+"\n", 1), "short \\x escape"},
		{"too long", g + strings.Repeat("x", maxEntryBytes), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntry([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseEntry(%q) = %v; want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, spaces", "plain text, spaces"},
		{`back\slash`, `back\\slash`},
		{"line\nbreak", `line\nbreak`},
		{"tab\tcr\r", `tab\x09cr\x0d`},
		{"del\x7f", `del\x7f`},
		{"utf8 æøå €", "utf8 æøå €"},
		{"bad \xc3\x28", `bad \xc3(`},
		{"", ""},
	}
	for _, tt := range tests {
		got := string(appendEscaped(nil, tt.in))
		if got != tt.want {
			t.Errorf("appendEscaped(%q) = %q; want %q", tt.in, got, tt.want)
		}
		back, err := unescape(got)
		if err != nil || back != tt.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

func TestEventCheck(t *testing.T) {
	ok := Event{Kind: ConfigAccepted, Actor: "service", Fields: []Field{
		{Key: "sha256", Type: TypeHash, Value: "00ff"}, Token("source", "start")}}
	with := func(f Field) Event {
		e := ok
		e.Fields = []Field{f, Token("source", "start")}
		return e
	}
	tests := []struct {
		name string
		e    Event
		want string // "" means valid
	}{
		{"valid", ok, ""},
		{"unknown kind", Event{Kind: "nope", Actor: "x"}, "unknown event kind"},
		{"no actor", Event{Kind: ServiceStop, Fields: []Field{Token("reason", "signal")}}, "actor"},
		{"missing required", Event{Kind: ServiceStop, Actor: "service"}, "required field \"reason\""},
		{"undeclared field", Event{Kind: ServiceStop, Actor: "s", Fields: []Field{Token("reason", "x"), Token("ref", "y")}}, "not declared"},
		{"wrong type", with(Token("sha256", "00ff")), "wrong type"},
		{"hash upper", with(Field{Key: "sha256", Type: TypeHash, Value: "00FF"}), "lowercase hex"},
		{"hash odd", with(Field{Key: "sha256", Type: TypeHash, Value: "0ff"}), "even"},
		{"token space", Event{Kind: ServiceStop, Actor: "s", Fields: []Field{Token("reason", "a b")}}, "spaces"},
		{"int plus", Event{Kind: ReviewRun, Actor: "s", Fields: []Field{{Key: "bookings", Type: TypeInt, Value: "+1"}, Int("segments", 0)}}, "canonical"},
		{"int leading zero", Event{Kind: ReviewRun, Actor: "s", Fields: []Field{{Key: "bookings", Type: TypeInt, Value: "01"}, Int("segments", 0)}}, "canonical"},
		{"time offset", Event{Kind: ServiceUncleanStop, Actor: "s", Fields: []Field{{Key: "last_alive", Type: TypeTime, Value: "2026-03-01T10:00:00+01:00"}}}, "RFC 3339"},
		{"time constructor", Event{Kind: ServiceUncleanStop, Actor: "s", Fields: []Field{Time("last_alive", time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("x", 3600)))}}, ""},
		{"text too long", Event{Kind: CaseRejected, Actor: "s", Fields: []Field{Token("case", "c"), Text("why", strings.Repeat("x", maxText+1))}}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%+v) = %v; want nil", tt.e, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check(%+v) = %v; want an error containing %q", tt.e, err, tt.want)
			}
		})
	}
}

// TestKindsEncodable: every declared kind and field key has a shape the
// entry encoding accepts, so an event that passes Check can always be
// recorded.
func TestKindsEncodable(t *testing.T) {
	ks := Kinds()
	if len(ks) != len(kinds) || !slices.IsSorted(ks) {
		t.Fatalf("Kinds() = %v; want all %d kinds in order", ks, len(kinds))
	}
	for _, k := range ks {
		if !isName(string(k), ".-") {
			t.Errorf("kind %q is not a kind name", k)
		}
		for key, spec := range kinds[k].fields {
			if !isName(key, "") {
				t.Errorf("%s: field key %q is not a key name", k, key)
			}
			if _, ok := typeNames[spec.typ]; !ok {
				t.Errorf("%s: field %q has type %d without a name", k, key, spec.typ)
			}
		}
	}
}
