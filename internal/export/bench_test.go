package export

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/carrel-lib/carrel/internal/capture"
	"github.com/carrel-lib/carrel/internal/seal"
)

// The year benchmark: one year of bookings for 50 PCs (350,400 rows) and
// 1 GiB of sealed traffic (768 MiB of metadata records, 256 MiB of
// packets) exported as one bundle. It runs only under `make bench-export`
// (CARREL_BENCH_EXPORT=1). The generated data is kept for the next run in
// $CARREL_BENCH_DIR, by default the user's cache folder
// (~/.cache/carrel-bench/export-year-v1), out of the way of /tmp clean-ups.
const (
	benchPCs          = 50
	benchBookingsDay  = 19 // per PC and day: 50 × 365 × 19 ≈ 350,000
	benchJSONLBytes   = 768 << 20
	benchPacketsBytes = 256 << 20
)

var benchYear = Window{
	From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	To:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
}

func BenchmarkExportYear(b *testing.B) {
	if os.Getenv("CARREL_BENCH_EXPORT") != "1" {
		b.Skip("set CARREL_BENCH_EXPORT=1 (make bench-export) to run the one-year export")
	}
	f := benchFixture(b)
	var sealed int64
	for _, s := range f.segs {
		sealed += s.Size
	}
	b.SetBytes(sealed)
	b.ResetTimer()
	var res *Result
	for i := 0; b.Loop(); i++ {
		out := filepath.Join(f.root, fmt.Sprintf("bundle-%d", i))
		o := f.options(out)
		o.Window = benchYear
		var err error
		if res, err = Run(context.Background(), o); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(out)
		f.release(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(res.Bookings), "bookings")
	b.ReportMetric(float64(res.Segments), "segments")
	b.ReportMetric(float64(res.Bytes)/(1<<20), "bundle-MiB")
}

func BenchmarkVerifyYear(b *testing.B) {
	if os.Getenv("CARREL_BENCH_EXPORT") != "1" {
		b.Skip("set CARREL_BENCH_EXPORT=1 (make bench-export) to run the one-year verify")
	}
	f := benchFixture(b)
	out := filepath.Join(f.root, "bundle-verify")
	os.RemoveAll(out)
	o := f.options(out)
	o.Window = benchYear
	res, err := Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(out)
	defer f.release(b)
	ids := loadIDs(b, f.identity)
	b.SetBytes(res.Bytes)
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyDir(out, VerifyOptions{Identities: ids}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestrictJSONL is the per-record cost of restricting and
// converting decrypted metadata records (the bulk of an export's CPU).
func BenchmarkRestrictJSONL(b *testing.B) {
	var plain bytes.Buffer
	ts := benchYear.From
	for i := 0; plain.Len() < 8<<20; i++ {
		r := benchRecord(i, ts.Add(time.Duration(i)*time.Second))
		plain.Write(capture.AppendJSON(nil, &r))
	}
	b.SetBytes(int64(plain.Len()))
	for b.Loop() {
		if _, err := restrictJSONL(bytes.NewReader(plain.Bytes()), benchYear, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// benchData is the generated data folder.
type benchData struct {
	*fixture
	segs []seal.Segment
}

func (f *benchData) release(tb testing.TB) {
	if n, err := f.sealStore().Release(context.Background(), "RET-2026-0042"); err != nil && n == 0 {
		tb.Logf("release: %v", err)
	}
}

func benchFixture(b *testing.B) *benchData {
	b.Helper()
	dir := os.Getenv("CARREL_BENCH_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		dir = filepath.Join(cache, "carrel-bench", "export-year-v1")
	}
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err != nil {
		os.RemoveAll(dir)
		generate(b, dir)
		if err := os.WriteFile(done, nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	f := openFixture(b, dir)
	segs, err := f.sealStore().Segments(context.Background(), seal.Filter{States: []seal.State{seal.StateSealed}})
	if err != nil {
		b.Fatal(err)
	}
	return &benchData{fixture: f, segs: segs}
}

// generate writes the year's data into dir with the real packages: the
// register's schema by booking.Open, its rows in one transaction (the
// API's one fsync per booking would take an hour), traffic through a real
// seal.Writer.
func generate(b *testing.B, dir string) {
	b.Helper()
	start := time.Now()
	f := newFixtureAt(b, dir, "")
	f.close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(f.dataDir, bookingsFile)+"?_journal_mode=WAL")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO bookings (pc_id, ref, start_ms, planned_end_ms, end_ms, ended_how) VALUES (?, ?, ?, ?, ?, 'ended')`)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for day := benchYear.From; day.Before(benchYear.To); day = day.Add(24 * time.Hour) {
		for pc := range benchPCs {
			for k := range benchBookingsDay {
				s := day.Add(9*time.Hour + time.Duration(k)*35*time.Minute)
				e := s.Add(30 * time.Minute)
				n++
				if _, err := stmt.Exec(fmt.Sprintf("pc-%02d", pc+1), fmt.Sprintf("B-%07d", n), s.UnixMilli(), e.UnixMilli(), e.UnixMilli()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	db.Close()

	f = openFixture(b, dir)
	defer f.close()
	store := f.sealStore()
	span := benchYear.To.Sub(benchYear.From)
	write := func(caseID string, format seal.Format, header []byte, total int, next func(i int, ts time.Time) []byte, step time.Duration) {
		w, err := store.NewWriter(seal.WriterOptions{Case: caseID, Format: format, Header: header,
			Recipients: []string{f.recipient}, MinFree: -1, MaxAge: 365 * 24 * time.Hour, Now: f.clock})
		if err != nil {
			b.Fatal(err)
		}
		written := 0
		for i := 0; written < total; i++ {
			ts := benchYear.From.Add(time.Duration(i) * step % span)
			rec := next(i, ts)
			f.set(ts)
			if err := w.Write(rec, ts); err != nil {
				b.Fatal(err)
			}
			written += len(rec)
			if w.Due(ts) { // as the capture engine does
				if err := w.Cut(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	write("2025-meta", seal.JSONL, nil, benchJSONLBytes, func(i int, ts time.Time) []byte {
		r := benchRecord(i, ts)
		return capture.AppendJSON(nil, &r)
	}, 9*time.Second)
	pkt := udpFrame(b, 40000, bytes.Repeat([]byte{0xab}, 960))
	write("2025-pkt", seal.PCAPNG, capture.PcapngHeader(layers.LinkTypeEthernet, 262144, "2025-pkt"), benchPacketsBytes,
		func(i int, ts time.Time) []byte { return epb(pkt, ts) }, 100*time.Second)
	b.Logf("generated %d bookings and %d MiB of traffic in %s", n, (benchJSONLBytes+benchPacketsBytes)>>20, time.Since(start).Round(time.Second))
}

func benchRecord(i int, ts time.Time) capture.Record {
	switch i % 4 {
	case 0:
		return flowRec(ts.Add(-30*time.Second), ts)
	case 1:
		r := dnsRec(ts, fmt.Sprintf("host-%d.example.org", i%5000))
		return r
	case 2:
		return tlsRec(ts, fmt.Sprintf("www-%d.example.com", i%3000))
	default:
		r := httpRec(ts, "intranet.example")
		r.Src = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		return r
	}
}

// BenchmarkBookingsYear is the bookings part of the year's export: the
// register's List over the year and the CSV of 346,750 rows.
func BenchmarkBookingsYear(b *testing.B) {
	if os.Getenv("CARREL_BENCH_EXPORT") != "1" {
		b.Skip("set CARREL_BENCH_EXPORT=1 (make bench-export) to run the one-year export")
	}
	f := benchFixture(b)
	for b.Loop() {
		bs, err := f.bookings.List(context.Background(), benchYear.From, benchYear.To)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeBookingsCSV(io.Discard, bs); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(bs)), "bookings")
	}
}
