package export

import (
	"sync"
	"testing"
	"time"
)

func TestProgressLeft(t *testing.T) {
	tests := []struct {
		p    Progress
		want time.Duration
	}{
		{Progress{Bytes: 0, BytesTotal: 100, Elapsed: time.Second}, 0},
		{Progress{Bytes: 50, BytesTotal: 100, Elapsed: 10 * time.Second}, 10 * time.Second},
		{Progress{Bytes: 25, BytesTotal: 100, Elapsed: time.Second}, 3 * time.Second},
		{Progress{Bytes: 100, BytesTotal: 100, Elapsed: time.Second}, 0},
		{Progress{Bytes: 10, BytesTotal: 100}, 0},
	}
	for _, tt := range tests {
		if got := tt.p.Left(); got != tt.want {
			t.Errorf("%+v.Left() = %v; want %v", tt.p, got, tt.want)
		}
	}
}

// TestMeter: reports are rate-limited except the first (totals) and the
// last, which always come; a nil meter counts nothing and does not panic.
func TestMeter(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var got []Progress
	m := newMeter(func(p Progress) { got = append(got, p) }, clock)
	m.setTotals(3, 300)
	m.addBytes(100)
	m.fileDone()
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	m.addBytes(100)
	m.done()
	if len(got) != 3 {
		t.Fatalf("meter reported %d times (%+v); want 3: totals, after a second, done", len(got), got)
	}
	last := got[2]
	if !last.Done || last.Files != 1 || last.FilesTotal != 3 || last.Bytes != 200 || last.Elapsed != time.Second {
		t.Errorf("last report = %+v", last)
	}
	var nilMeter *meter
	nilMeter.addBytes(1)
	nilMeter.fileDone()
	nilMeter.done()
	if newMeter(nil, clock) != nil {
		t.Error("newMeter(nil) is not nil")
	}
}
