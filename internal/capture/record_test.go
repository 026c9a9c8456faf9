package capture

import (
	"bytes"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

// goldenRecords cover every kind and every field; testdata/records.golden
// pins their bytes. A change to it is a change of the wire form: old
// sealed segments must still decode.
var goldenRecords = []Record{
	{Kind: KindFlow, TS: t0.Add(time.Second), Proto: protoTCP, Src: pc4, SrcPort: 51234, Dst: srv4, DstPort: 443,
		First: t0, Last: t0.Add(time.Second), SrcPackets: 12, SrcBytes: 2345, DstPackets: 10, DstBytes: 45678},
	{Kind: KindFlow, TS: t0, Proto: protoICMPv6, Src: pc6, Dst: srv6, First: t0, Last: t0, SrcPackets: 1, SrcBytes: 118},
	{Kind: KindFlow, TS: t0, Proto: 47, Src: pc4, Dst: srv4, First: t0, Last: t0, DstPackets: 1, DstBytes: 60},
	{Kind: KindDNS, TS: t0, Proto: protoUDP, Src: pc4, SrcPort: 40000, Dst: srv4, DstPort: 53, Name: "www.example.test", QType: 1},
	{Kind: KindDNS, TS: t0, Proto: protoUDP, Src: srv6, SrcPort: 53, Dst: pc6, DstPort: 40001, Name: "nope.example.test", QType: 28, RCode: 3, Response: true},
	{Kind: KindDNS, TS: t0, Proto: protoTCP, Src: pc4, SrcPort: 40002, Dst: srv4, DstPort: 53, Name: `we\.ird\\"\255.test`, QType: 4242, RCode: 12},
	{Kind: KindTLS, TS: t0, Proto: protoTCP, Src: pc4, SrcPort: 51234, Dst: srv4, DstPort: 443, SNI: "secure.example.test"},
	{Kind: KindHTTP, TS: t0, Proto: protoTCP, Src: pc6, SrcPort: 51235, Dst: srv6, DstPort: 80, Host: "www.example.test:8080"},
	// Added with QUIC and ECH: the markers come after sni, only when true.
	{Kind: KindTLS, TS: t0, Proto: protoUDP, Src: pc4, SrcPort: 51236, Dst: srv4, DstPort: 443, SNI: "quic.example.test", QUIC: true},
	{Kind: KindTLS, TS: t0, Proto: protoTCP, Src: pc6, SrcPort: 51237, Dst: srv6, DstPort: 443, SNI: "public.example.test", ECH: true},
	{Kind: KindTLS, TS: t0, Proto: protoUDP, Src: pc6, SrcPort: 51238, Dst: srv6, DstPort: 443, SNI: "public.example.test", QUIC: true, ECH: true},
}

func TestAppendJSONGolden(t *testing.T) {
	var got []byte
	for i := range goldenRecords {
		got = AppendJSON(got, &goldenRecords[i])
	}
	path := filepath.Join("testdata", "records.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendJSON(goldenRecords) =\n%s\nwant (testdata/records.golden)\n%s", got, want)
	}
}

func TestDecodeJSONRoundTrip(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "records.golden"))
	if err != nil {
		t.Fatal(err)
	}
	rr := NewRecordReader(bytes.NewReader(want))
	var again []byte
	for i := 0; ; i++ {
		r, err := rr.Next()
		if err == io.EOF {
			if i != len(goldenRecords) {
				t.Fatalf("read %d records; want %d", i, len(goldenRecords))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		g := goldenRecords[i]
		// The wire form keeps text in presentation form and times in UTC.
		if r.Kind != g.Kind || !r.TS.Equal(g.TS) || r.Src != g.Src || r.Dst != g.Dst || r.SrcPort != g.SrcPort ||
			r.DstPort != g.DstPort || r.Proto != g.Proto || r.SrcBytes != g.SrcBytes || r.DstPackets != g.DstPackets ||
			r.QType != g.QType || r.RCode != g.RCode || r.Response != g.Response || r.SNI != g.SNI || r.Host != g.Host ||
			r.QUIC != g.QUIC || r.ECH != g.ECH {
			t.Errorf("record %d: DecodeJSON(AppendJSON(r)) = %+v; want %+v", i, r, g)
		}
		again = AppendJSON(again, &r)
	}
	if !bytes.Equal(again, want) {
		t.Errorf("AppendJSON(DecodeJSON(golden)) =\n%s\nwant\n%s", again, want)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", `{"kind":`, "decoding record"},
		{"no kind", `{"ts":"2024-05-01T10:00:00Z"}`, `key "kind": missing`},
		{"unknown kind", `{"kind":"smtp"}`, `unknown kind "smtp"`},
		{"bad time", `{"kind":"tls","ts":"yesterday","proto":"tcp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":2,"sni":"a"}`, `key "ts"`},
		{"bad addr", `{"kind":"tls","ts":"2024-05-01T10:00:00Z","proto":"tcp","src":"10.0.0","sport":1,"dst":"10.0.0.2","dport":2,"sni":"a"}`, `key "src"`},
		{"port range", `{"kind":"tls","ts":"2024-05-01T10:00:00Z","proto":"tcp","src":"10.0.0.1","sport":70000,"dst":"10.0.0.2","dport":2,"sni":"a"}`, `decoding record`},
		{"no sni", `{"kind":"tls","ts":"2024-05-01T10:00:00Z","proto":"tcp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":2}`, `key "sni": missing`},
		{"bad qtype", `{"kind":"dns","ts":"2024-05-01T10:00:00Z","proto":"udp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":53,"name":"a","qtype":"BOGUS","rcode":"NOERROR","response":false}`, `unknown type "BOGUS"`},
		{"flow counters", `{"kind":"flow","ts":"2024-05-01T10:00:00Z","proto":"udp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":53,"first":"2024-05-01T10:00:00Z","last":"2024-05-01T10:00:00Z"}`, `key "src_packets": missing`},
		{"bad proto", `{"kind":"http","ts":"2024-05-01T10:00:00Z","proto":"sctp","src":"10.0.0.1","sport":1,"dst":"10.0.0.2","dport":80,"host":"a"}`, `unknown protocol "sctp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeJSON(%s) = %v; want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestRecordReaderNamesLine(t *testing.T) {
	in := AppendJSON(nil, &goldenRecords[0])
	in = append(in, "\n{broken\n"...)
	rr := NewRecordReader(bytes.NewReader(in))
	if _, err := rr.Next(); err != nil {
		t.Fatalf("first record: %v", err)
	}
	if _, err := rr.Next(); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Next() on a broken third line = %v; want an error naming line 3", err)
	}
}

func TestAppendTextEscapes(t *testing.T) {
	r := Record{Kind: KindHTTP, TS: t0, Proto: protoTCP, Src: netip.MustParseAddr("::ffff:10.0.0.1"), Dst: srv4, Host: "a\"b\\c\x00\xffd"}
	got := string(AppendJSON(nil, &r))
	want := `"host":"a\"b\\c\\000\\255d"`
	if !strings.Contains(got, want) || !strings.Contains(got, `"src":"10.0.0.1"`) {
		t.Errorf("AppendJSON(%q) = %s; want it to contain %s and an unmapped IPv4 src", r.Host, got, want)
	}
}
