package export

import (
	"sync"
	"time"
)

// Progress is a snapshot of a running export, handed to Options.Progress.
// Bytes count the sealed ciphertext read so far: decrypting and hashing it
// is nearly all of an export's work, so it is what time left is based on.
type Progress struct {
	Files, FilesTotal int
	Bytes, BytesTotal int64
	Elapsed           time.Duration
	Done              bool // the last call
}

// Left estimates the time left from the rate so far; 0 when it cannot tell.
func (p Progress) Left() time.Duration {
	if p.Bytes <= 0 || p.BytesTotal <= p.Bytes || p.Elapsed <= 0 {
		return 0
	}
	rate := float64(p.Bytes) / p.Elapsed.Seconds()
	return time.Duration(float64(p.BytesTotal-p.Bytes) / rate * float64(time.Second))
}

// meter counts and reports progress at most every reportEvery. A nil
// *meter, or one without a callback, counts nothing.
type meter struct {
	fn    func(Progress)
	now   func() time.Time
	start time.Time
	mu    sync.Mutex
	p     Progress
	last  time.Time
}

const reportEvery = 200 * time.Millisecond

func newMeter(fn func(Progress), now func() time.Time) *meter {
	if fn == nil {
		return nil
	}
	t := now()
	return &meter{fn: fn, now: now, start: t, last: t}
}

func (m *meter) setTotals(files int, bytes int64) {
	m.update(true, func(p *Progress) { p.FilesTotal, p.BytesTotal = files, bytes })
}

func (m *meter) addBytes(n int64) { m.update(false, func(p *Progress) { p.Bytes += n }) }

func (m *meter) fileDone() {
	m.update(false, func(p *Progress) {
		p.Files++
		p.FilesTotal = max(p.FilesTotal, p.Files)
	})
}

func (m *meter) done() { m.update(true, func(p *Progress) { p.Done = true }) }

// update changes the counts and reports them, unless the last report was
// less than reportEvery ago and force is false.
func (m *meter) update(force bool, change func(*Progress)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	change(&m.p)
	t := m.now()
	if !force && t.Sub(m.last) < reportEvery {
		m.mu.Unlock()
		return
	}
	m.last = t
	p := m.p
	p.Elapsed = t.Sub(m.start)
	m.mu.Unlock()
	m.fn(p)
}
