package capture

import "time"

// batch carries encoded records from the capture goroutine to the writer
// goroutine. Batches come from a fixed free list, so the capture path
// never allocates for them and a slow sink slows capture down (and the
// kernel counts the drops) instead of growing memory.
type batch struct {
	buf  []byte
	recs []recMark
	cut  bool // after writing the records, close the segment
}

// recMark is where a record ends in buf and its packet time.
type recMark struct {
	end int
	ts  int64 // Unix nanoseconds
}

const (
	batchBytes   = 256 << 10
	batchRecords = 4096
	batchCount   = 16
	// recordRoom is kept free for one JSON record, whose text field is
	// at most maxNameText bytes, each escaped to at most two.
	recordRoom = 2*maxNameText + 512
	// batchAge is how long records may wait in a half-full batch.
	batchAge = int64(100 * time.Millisecond)
)

func newBatch() *batch {
	return &batch{buf: make([]byte, 0, batchBytes), recs: make([]recMark, 0, batchRecords)}
}

// batcher fills one batch at a time and hands it on with send.
type batcher struct {
	free  chan *batch
	cur   *batch
	first int64 // packet time of cur's first record
	send  func(*batch)
}

func newBatcher(send func(*batch)) *batcher {
	o := &batcher{free: make(chan *batch, batchCount), send: send}
	for range batchCount {
		o.free <- newBatch()
	}
	return o
}

// room returns the open batch, first handing on the current one if fewer
// than n bytes are left in it.
func (o *batcher) room(n int, ts int64) *batch {
	if o.cur != nil && cap(o.cur.buf)-len(o.cur.buf) < n {
		o.flush()
	}
	if o.cur == nil {
		o.cur = <-o.free
		o.first = ts
	}
	return o.cur
}

func (o *batcher) mark(b *batch, ts int64) {
	b.recs = append(b.recs, recMark{end: len(b.buf), ts: ts})
	if len(b.recs) == cap(b.recs) {
		o.flush()
	}
}

// addRecord encodes r into the open batch; r is not kept.
func (o *batcher) addRecord(r *Record) {
	ts := r.TS.UnixNano()
	b := o.room(recordRoom, ts)
	b.buf = AppendJSON(b.buf, r)
	o.mark(b, ts)
}

// addBlock appends one pcapng Enhanced Packet Block for data.
func (o *batcher) addBlock(data []byte, ts int64, origLen, snaplen int) {
	n := min(len(data), snaplen)
	b := o.room(epbOverhead+n+3, ts)
	b.buf = appendEPB(b.buf, data[:n], ts, origLen)
	o.mark(b, ts)
}

// flushOld hands on the open batch if its first record is older than
// batchAge at time now, so quiet traffic still reaches the sink soon.
func (o *batcher) flushOld(now int64) {
	if o.cur != nil && len(o.cur.recs) > 0 && now-o.first >= batchAge {
		o.flush()
	}
}

// cut hands on the open batch marked to close the segment after it.
func (o *batcher) cut() {
	if o.cur == nil {
		o.cur = <-o.free
	}
	o.cur.cut = true
	o.flush()
}

func (o *batcher) flush() {
	if o.cur == nil {
		return
	}
	b := o.cur
	o.cur = nil
	o.send(b)
}

// recycle empties b and returns it to the free list.
func (o *batcher) recycle(b *batch) {
	b.buf, b.recs, b.cut = b.buf[:0], b.recs[:0], false
	o.free <- b
}

// writeBatch hands b's records to sink in order, then cuts the segment if
// b asks for it. It stops at the first error and returns how many records
// it wrote.
func writeBatch(sink Sink, b *batch) (int, error) {
	start := 0
	for i, m := range b.recs {
		if err := sink.Write(b.buf[start:m.end], time.Unix(0, m.ts)); err != nil {
			return i, err
		}
		start = m.end
	}
	if b.cut {
		if err := sink.Cut(); err != nil {
			return len(b.recs), err
		}
	}
	return len(b.recs), nil
}
