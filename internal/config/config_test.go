package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// base is a minimal valid config; tests append lines to it.
const base = "version = 1\n[pc]\nid = \"pc-01\"\n[storage]\ndata_dir = \"/var/lib/carrel\"\n"

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatalf("Parse(base) error: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"booking.retention", c.Booking.Retention.D(), DefaultBookingRetention},
		{"booking.api_socket", c.Booking.APISocket, DefaultSocket},
		{"booking.client_group", c.Booking.ClientGroup, DefaultClientGroup},
		{"audit.checkpoint_interval", c.Audit.CheckpointInterval.D(), DefaultCheckpointInterval},
		{"capture.max_case_days", c.Capture.MaxCaseDays, DefaultMaxCaseDays},
		{"capture.max_bytes", int64(c.Capture.MaxBytes), int64(DefaultMaxBytes)},
		{"capture.ring_size", int64(c.Capture.RingSize), int64(DefaultRingSize)},
		{"capture.traffic_retention", c.Capture.TrafficRetention.D(), DefaultTrafficRetention},
		{"pc.id", c.PC.ID, "pc-01"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("Parse(base).%s = %v; want %v", ch.name, ch.got, ch.want)
		}
	}
	if len(c.Cases) != 0 {
		t.Errorf("Parse(base) has %d cases; want 0", len(c.Cases))
	}
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	c.PC.ID = "pc-01" // the test machine's host name may not be a valid id
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v; want nil", err)
	}
}

// TestValidateRules has one row per rule: the extra TOML that breaks it and
// the key that must be named. A row for a valid value checks the boundary.
func TestValidateRules(t *testing.T) {
	tests := []struct {
		name    string
		extra   string
		base    string // replaces base when set
		wantKey string // "" means valid
	}{
		{"version missing", "", "[pc]\nid = \"pc-01\"\n", "version"},
		{"version wrong", "", "version = 2\n[pc]\nid=\"pc-01\"\n", "version"},
		{"unknown top key", "", "version = 1\ncolour = \"red\"\n[pc]\nid=\"p\"\n", "colour"},
		{"unknown section key", "[booking]\nretension = \"28d\"", "", "booking.retension"},
		{"unknown section", "[bookings]\nretention = \"28d\"", "", "bookings"},
		{"pc id with space", "", "version = 1\n[pc]\nid = \"pc 01\"\n", "pc.id"},
		{"pc id too long", "", "version = 1\n[pc]\nid = \"" + strings.Repeat("a", 64) + "\"\n", "pc.id"},
		{"pc id 63 ok", "", "version = 1\n[pc]\nid = \"" + strings.Repeat("a", 63) + "\"\n", ""},
		{"pc id explicit empty", "", "version = 1\n[pc]\nid = \"\"\n", "pc.id"},
		{"data dir relative", "", "version = 1\n[pc]\nid=\"p\"\n[storage]\ndata_dir = \"var/lib\"\n", "storage.data_dir"},
		{"retention zero", "[booking]\nretention = \"0d\"", "", "booking.retention"},
		{"retention 59m", "[booking]\nretention = \"59m\"", "", "booking.retention"},
		{"retention 1h ok", "[booking]\nretention = \"1h\"", "", ""},
		{"retention 366d ok", "[booking]\nretention = \"366d\"", "", ""},
		{"retention 367d", "[booking]\nretention = \"367d\"", "", "booking.retention"},
		{"retention garbage", "[booking]\nretention = \"four weeks\"", "", "booking.retention"},
		{"retention integer", "[booking]\nretention = 28", "", "booking.retention"},
		{"socket relative", "[booking]\napi_socket = \"api.sock\"", "", "booking.api_socket"},
		{"socket too long", "[booking]\napi_socket = \"/" + strings.Repeat("s", 100) + "\"", "", "booking.api_socket"},
		{"pipe not a pipe", "[booking]\napi_pipe = 'C:\\carrel'", "", "booking.api_pipe"},
		{"pipe prefix only", "[booking]\napi_pipe = '\\\\.\\pipe\\'", "", "booking.api_pipe"},
		{"group bad", "[booking]\nclient_group = \"a;b\"", "", "booking.client_group"},
		{"group empty ok", "[booking]\nclient_group = \"\"", "", ""},
		{"checkpoint 30s", "[audit]\ncheckpoint_interval = \"30s\"", "", "audit.checkpoint_interval"},
		{"checkpoint 25h", "[audit]\ncheckpoint_interval = \"25h\"", "", "audit.checkpoint_interval"},
		{"interface bad", "[capture]\ninterface = \"eth0; rm\"", "", "capture.interface"},
		{"recipient bad", "[capture]\nrecipients = [\"age1nope\"]", "", "capture.recipients[0]"},
		{"recipient ssh key", "[capture]\nrecipients = [\"ssh-ed25519 AAAA\"]", "", "capture.recipients[0]"},
		{"recipient twice", "[capture]\nrecipients = [\"" + recipient + "\", \"" + recipient + "\"]", "", "capture.recipients[1]"},
		{"recipient ok", "[capture]\nrecipients = [\"" + recipient + "\"]", "", ""},
		{"max case days 90 ok", "[capture]\nmax_case_days = 90", "", ""},
		{"max case days 91", "[capture]\nmax_case_days = 91", "", "capture.max_case_days"},
		{"max case days 0", "[capture]\nmax_case_days = 0", "", "capture.max_case_days"},
		{"max bytes small", "[capture]\nmax_bytes = \"1MiB\"", "", "capture.max_bytes"},
		{"max bytes decimal unit", "[capture]\nmax_bytes = \"4GB\"", "", "capture.max_bytes"},
		{"section not a table", "", "version = 1\npc = 5\n", "pc"},
		{"case not tables", "", "version = 1\ncase = 5\n", "case"},
		{"nested unknown table", "[booking.extra]\nx = 1", "", "booking.extra"},
		{"dotted keys ok", "", "version = 1\npc.id = \"pc-01\"\n", ""},
		{"inline table ok", "", "version = 1\npc = {id = \"pc-01\"}\n", ""},
		{"ring not MiB", "[capture]\nring_size = \"1536KiB\"", "", "capture.ring_size"},
		{"ring too big", "[capture]\nring_size = \"2GiB\"", "", "capture.ring_size"},
		{"traffic retention 0", "[capture]\ntraffic_retention = \"0s\"", "", "capture.traffic_retention"},
		{"library text too long", "[library]\nname = \"" + strings.Repeat("x", 501) + "\"", "", "library.name"},
		{"syntax error", "[booking\nretention = \"28d\"", "", "(file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := base
			if tt.base != "" {
				doc = tt.base
			}
			_, err := Parse([]byte(doc + tt.extra + "\n"))
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Parse() = %v; want nil", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse() error = %v; want Problems naming %q", err, tt.wantKey)
			}
			for _, p := range ps {
				if p.Key == tt.wantKey {
					return
				}
			}
			t.Errorf("Parse() problems = %v; want one for key %q", ps, tt.wantKey)
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	doc := "version = 1\n[pc]\nid = \"bad id\"\n[booking]\nretention = \"0d\"\nfoo = 1\n[capture]\nmax_case_days = 100\n"
	_, err := Parse([]byte(doc))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse() = %v; want Problems", err)
	}
	want := []string{"booking.foo", "booking.retention", "capture.max_case_days", "pc.id"}
	var got []string
	for _, p := range ps {
		got = append(got, p.Key)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Parse() problem keys = %v; want %v", got, want)
	}
}

// TestParseReportsEveryDecodeProblem: values of the wrong type or form do
// not stop the decoding (the TOML decoder alone stops at the first): each
// problem is named with its key and line, together with unknown keys and a
// missing version, and a bad value is not reported twice.
func TestParseReportsEveryDecodeProblem(t *testing.T) {
	doc := `[pc]
id = "pc-01"
[booking]
retention = "forever and ever"
nonsense_key = 1
[capture]
max_bytes = "4GB"
max_case_days = "30"
recipients = ["` + recipient + `", 7]
[audit]
checkpoint_interval = 15
`
	_, err := Parse([]byte(doc))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse() = %v; want Problems", err)
	}
	want := []string{
		"audit.checkpoint_interval: must be a duration in quotes such as \"28d\", \"36h\" or \"15m\", not an integer (line 11)",
		"booking.nonsense_key: unknown key (line 5)",
		"booking.retention: invalid duration \"forever and ever\": use for example 28d, 36h or 15m (line 4)",
		"capture.max_bytes: invalid size: want a whole number of bytes or one with KiB, MiB, GiB or TiB, such as 16MiB (line 7)",
		"capture.max_case_days: must be a whole number, not a string (line 8)",
		"capture.recipients: item 1 must be a string, not an integer (line 9)",
		"version: missing; add `version = 1` at the top",
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Parse() problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse([]byte("version = 1\n\nfoo = = 1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Parse(broken) = %v; want a message naming line 3", err)
	}
}

func TestCaseDecoding(t *testing.T) {
	doc := base + `
[[case]]
id = "2026-03"
reason = "r"
category = "illegal-content"
declared_by = "A"
approved_by = "B"
notice_posted_at = 2026-03-01T08:00:00Z
start = 2026-03-01T09:00:00+01:00
end = 2026-03-10T09:00:00
pcs = ["pc-01", "*"]
mode = "packets"
snaplen = 256

[[case]]
id = 7
aproved_by = "B"
start = 2026-03-01
end = "tomorrow"
pcs = "pc-01"
snaplen = 10
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse() = %v; want nil (case problems travel with the case)", err)
	}
	if len(c.Cases) != 2 {
		t.Fatalf("Parse() cases = %d; want 2", len(c.Cases))
	}
	a := c.Cases[0]
	if len(a.Problems) != 0 {
		t.Errorf("case 0 problems = %v; want none", a.Problems)
	}
	if !a.Start.Equal(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("case 0 start = %v; want 08:00Z", a.Start)
	}
	wantEnd := time.Date(2026, 3, 10, 9, 0, 0, 0, time.Local)
	if !a.End.Equal(wantEnd) {
		t.Errorf("case 0 end = %v; want %v (local time)", a.End, wantEnd)
	}
	if a.Mode != ModePackets || a.Snaplen != 256 || strings.Join(a.PCs, ",") != "pc-01,*" {
		t.Errorf("case 0 = mode %q snaplen %d pcs %v; want packets 256 [pc-01 *]", a.Mode, a.Snaplen, a.PCs)
	}
	b := c.Cases[1]
	var keys []string
	for _, p := range b.Problems {
		keys = append(keys, p.Key)
	}
	want := "aproved_by,end,id,pcs,snaplen,start"
	if strings.Join(keys, ",") != want {
		t.Errorf("case 1 problem keys = %v; want %s", keys, want)
	}
	if b.Name() != "#2" {
		t.Errorf("case 1 Name() = %q; want #2", b.Name())
	}
	if b.Mode != ModeMetadata {
		t.Errorf("case 1 mode = %q; want the default %q", b.Mode, ModeMetadata)
	}
}

func TestUnits(t *testing.T) {
	durs := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"28d", 28 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"640512d", 0, false},
		{"15251w", 0, false},
		{"18446744073709551616d", 0, false},
		{"9223372036854775807ns", time.Duration(math.MaxInt64), true},
		{"9223372036854775808ns", 0, false},
	}
	for _, d := range durs {
		got, err := ParseDuration(d.in)
		if (err == nil) != d.ok || got != d.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", d.in, got, err, d.want, d.ok)
		}
	}
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16MiB", 16 << 20, true},
		{"16 MiB", 16 << 20, true},
		{"4GiB", 4 << 30, true},
		{"1024", 1024, true},
		{"512B", 512, true},
		{"16MB", 0, false},
		{"-1", 0, false},
		{"99999999TiB", 0, false},
		{"4194304TiB", 1 << 62, true},
		{"4194305TiB", 0, false},
		{"4611686018427387905", 0, false},
		{"18446744073709551616", 0, false},
	}
	for _, s := range sizes {
		got, err := ParseSize(s.in)
		if (err == nil) != s.ok || got != s.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, ok=%v", s.in, got, err, s.want, s.ok)
		}
	}
	for _, v := range []Duration{Duration(28 * 24 * time.Hour), Duration(15 * time.Minute)} {
		back, err := ParseDuration(v.String())
		if err != nil || Duration(back) != v {
			t.Errorf("ParseDuration(%q) = %v, %v; want round trip", v.String(), back, err)
		}
	}
	if got := Size(8 << 20).String(); got != "8MiB" {
		t.Errorf("Size(8MiB).String() = %q; want 8MiB", got)
	}
}

func TestExampleIsValidAndComplete(t *testing.T) {
	for _, dir := range []string{"", "/tmp/carrel-x"} {
		doc := Example(dir)
		c, err := Parse(doc)
		if err != nil {
			var ps Problems
			// The host name of a test machine may not be a valid PC id; that
			// is the only problem the example may have.
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Key != "pc.id" {
				t.Fatalf("Parse(Example(%q)) = %v; want valid", dir, err)
			}
		}
		if dir != "" {
			if c.Storage.DataDir != dir || c.Booking.APISocket != dir+"/api.sock" {
				t.Errorf("Example(%q) data_dir, socket = %q, %q; want them under %s", dir, c.Storage.DataDir, c.Booking.APISocket, dir)
			}
		}
		// Every default must be written out in the example, so that the
		// file documents what is in force.
		for _, key := range []string{"retention", "api_socket", "api_pipe", "client_group", "checkpoint_interval",
			"interface", "recipients", "max_case_days", "max_bytes", "ring_size", "traffic_retention", "data_dir",
			"origin_prefix", "witnesses", "witness_quorum"} {
			if !strings.Contains(string(doc), "\n"+key+" = ") {
				t.Errorf("Example(%q) does not set %s", dir, key)
			}
		}
		def := Default()
		if c.Booking.Retention != def.Booking.Retention || c.Capture.MaxBytes != def.Capture.MaxBytes ||
			c.Capture.MaxCaseDays != def.Capture.MaxCaseDays || c.Capture.RingSize != def.Capture.RingSize ||
			c.Capture.TrafficRetention != def.Capture.TrafficRetention || c.Audit.CheckpointInterval != def.Audit.CheckpointInterval ||
			c.LogOrigin() != def.LogOrigin() || len(c.Audit.Witnesses) != 0 || c.Audit.WitnessQuorum != def.Audit.WitnessQuorum {
			t.Errorf("Example(%q) values differ from Default()", dir)
		}
	}
}

// TestBounds holds every documented bound (config/carrel.example.toml, the
// README) at its edge and just past it, and values at the edge of int64,
// which must be refused, never wrapped into range: "640512d" once parsed
// as about 1h16m and passed as a retention.
func TestBounds(t *testing.T) {
	type row struct {
		value string // the TOML value as written
		ok    bool
	}
	retention := []row{
		{`"1h"`, true}, {`"59m59s"`, false}, {`"3599999999999ns"`, false},
		{`"366d"`, true}, {`"8784h"`, true}, {`"8784h0m0.000000001s"`, false}, {`"367d"`, false},
		{`"52w"`, true}, {`"53w"`, false}, {`"0s"`, false}, {`"-1h"`, false},
		{`"640512d"`, false}, {`"106751d"`, false}, {`"106752d"`, false}, {`"4294967296d"`, false},
		{`"15250w"`, false}, {`"15251w"`, false},
		{`"18446744073709551615d"`, false}, {`"18446744073709551616d"`, false},
		{`"9223372036854775807ns"`, false}, {`"9223372036854775808ns"`, false},
		{`"-9223372036854775808ns"`, false}, {`"2562047h"`, false}, {`"2562048h"`, false},
	}
	tests := map[string][]row{
		"booking.retention":         retention,
		"capture.traffic_retention": retention,
		"audit.checkpoint_interval": {
			{`"1m"`, true}, {`"59s"`, false}, {`"24h"`, true}, {`"24h0m1s"`, false},
			{`"1d"`, true}, {`"2d"`, false}, {`"106752d"`, false}, {`"9223372036854775807ns"`, false},
		},
		"capture.max_case_days": {
			{`1`, true}, {`0`, false}, {`-1`, false}, {`90`, true}, {`91`, false},
			{`9223372036854775807`, false}, {`-9223372036854775808`, false},
		},
		"capture.max_bytes": {
			{`"64MiB"`, true}, {`"67108863"`, false}, {`67108864`, true}, {`67108863`, false},
			{`"4194304TiB"`, true}, {`"4194305TiB"`, false},
			{`"4611686018427387904"`, true}, {`4611686018427387904`, true}, {`4611686018427387905`, false},
			{`"9223372036854775807"`, false}, {`"18446744073709551616"`, false}, {`"-1"`, false}, {`-1`, false},
		},
		"capture.ring_size": {
			{`"1MiB"`, true}, {`"1023KiB"`, false}, {`"1GiB"`, true}, {`"1025MiB"`, false},
			{`"1048577"`, false}, {`"9223372036854775807"`, false},
		},
	}
	for key, rows := range tests {
		section, name, _ := strings.Cut(key, ".")
		for _, r := range rows {
			t.Run(key+"="+r.value, func(t *testing.T) {
				doc := base + "[" + section + "]\n" + name + " = " + r.value + "\n"
				_, err := Parse([]byte(doc))
				if r.ok {
					if err != nil {
						t.Fatalf("Parse(%s = %s) = %v; want valid", key, r.value, err)
					}
					return
				}
				var ps Problems
				if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Key != key {
					t.Fatalf("Parse(%s = %s) = %v; want one problem naming %s", key, r.value, err, key)
				}
			})
		}
	}
}

// TestOverflowNamesTheBound: a duration too long to represent is refused
// with the key's own bound, as a too long one that fits would be.
func TestOverflowNamesTheBound(t *testing.T) {
	for _, v := range []string{"640512d", "106752d", "18446744073709551616d", "9223372036854775808ns", "2562048h"} {
		_, err := Parse([]byte(base + "[booking]\nretention = \"" + v + "\"\n"))
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || !strings.HasPrefix(ps[0].String(), "booking.retention: must be between 1h and 366d") {
			t.Errorf("Parse(retention = %q) = %v; want the 1h–366d bound named", v, err)
		}
	}
}
