package capture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a capture has done so far.
type Stats struct {
	Packets     uint64 // packets read
	Bytes       uint64 // their length on the wire
	KernelDrops uint64 // packets the kernel (or Npcap) dropped because we were too slow
	Records     uint64 // records (JSON lines or pcapng blocks) the sink accepted
	Errors      uint64 // packets that failed to decode (counted, never fatal)
	// FlowsEvicted counts flows reported early because the flow table was
	// full; ReassemblyFull counts streams not followed because every
	// reassembly buffer was busy. Both mean the limits were reached.
	FlowsEvicted   uint64
	ReassemblyFull uint64
	// Lost counts records discarded after the sink failed.
	Lost uint64
}

// ErrRunning is returned by Start while a capture runs.
var ErrRunning = errors.New("capture already running")

// Engine captures from one interface at a time. The zero value is ready
// and holds nothing open: the capture socket exists only between Start
// and the end of the run (Stop, the context's end, or a failure). An
// Engine can be started again after a run has ended.
type Engine struct {
	mu  sync.Mutex
	cur *run
}

// run is one capture from Start to its end.
type run struct {
	iface string
	stop  chan struct{}
	once  sync.Once
	// halt is stop as a flag the capture loop can check per packet.
	halt   atomic.Bool
	cut    atomic.Bool // the writer asks the capture loop for a cut
	done   chan struct{}
	unhook func() bool // undoes the context.AfterFunc
	err    error       // set before done is closed
	errMu  sync.Mutex

	packets, bytes, drops, errors, evicted, reasmFull atomic.Uint64
	records, lost                                     atomic.Uint64
}

// Start opens the interface in s and captures until Stop, ctx's end or a
// failure (a read error, or the sink refusing a record — for example
// because the quota is reached). Errors opening the interface are
// returned here; later ones by Err once Done is closed.
func (e *Engine) Start(ctx context.Context, s Settings) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		select {
		case <-e.cur.done:
		default:
			return ErrRunning
		}
	}
	s, err := s.withDefaults()
	if err != nil {
		return err
	}
	src, err := openSource(s)
	if err != nil {
		return err
	}
	r := &run{iface: s.Interface, stop: make(chan struct{}), done: make(chan struct{})}
	work := make(chan *batch, batchCount)
	out := newBatcher(func(b *batch) { work <- b })
	p, err := newProcessor(s.Mode, src.linkType(), s.Snaplen, s.FlowIdle, s.MaxFlows, rand.Uint64(), out)
	if err != nil {
		src.close()
		return err
	}
	e.cur = r
	r.unhook = context.AfterFunc(ctx, r.signalStop)
	go r.write(s.Sink, out, work)
	go r.capture(src, p, out, work)
	return nil
}

// Stop ends the capture and waits for it: flows are flushed, the sink is
// written to and closed. It returns the final counts. Stop on an engine
// that is not running returns the last run's counts.
func (e *Engine) Stop() Stats {
	e.mu.Lock()
	r := e.cur
	e.mu.Unlock()
	if r == nil {
		return Stats{}
	}
	r.signalStop()
	<-r.done
	return r.stats()
}

// Stats returns the counts so far; they are refreshed at least every 100 ms
// (of packet time, or of waiting for packets) while capturing.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	r := e.cur
	e.mu.Unlock()
	if r == nil {
		return Stats{}
	}
	return r.stats()
}

// Done is closed when the current (or last) run has ended, for whatever
// reason. Before the first Start it is nil.
func (e *Engine) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return nil
	}
	return e.cur.done
}

// Err reports why the last run ended on its own: nil after Stop or the
// context's end, otherwise the read or sink error. It is nil while running.
func (e *Engine) Err() error {
	e.mu.Lock()
	r := e.cur
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

func (r *run) signalStop() {
	r.once.Do(func() {
		r.halt.Store(true)
		close(r.stop)
	})
}

// fail records the first error of the run and ends it.
func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.signalStop()
}

func (r *run) stats() Stats {
	return Stats{
		Packets: r.packets.Load(), Bytes: r.bytes.Load(), KernelDrops: r.drops.Load(),
		Records: r.records.Load(), Errors: r.errors.Load(), FlowsEvicted: r.evicted.Load(),
		ReassemblyFull: r.reasmFull.Load(), Lost: r.lost.Load(),
	}
}

// publishEvery bounds how stale Stats may be while packets arrive.
const publishEvery = 100 * time.Millisecond

// publish copies the capture goroutine's counters out for Stats.
func (r *run) publish(p *processor, src source) {
	r.packets.Store(p.st.packets)
	r.bytes.Store(p.st.bytes)
	r.errors.Store(p.st.errors)
	r.evicted.Store(p.st.evicted)
	r.reasmFull.Store(p.st.reasmFull)
	r.drops.Store(src.drops())
}

// capture is the capture goroutine: read, decode, extract, encode into
// batches. It never touches the disk or the sink.
func (r *run) capture(src source, p *processor, out *batcher, work chan<- *batch) {
	defer close(work)
	var published int64 // packet time of the last publish
	for !r.halt.Load() {
		if r.cut.Load() {
			r.cut.Store(false)
			p.flushFlows()
			out.cut()
		}
		data, ci, err := src.ZeroCopyReadPacketData()
		if err != nil {
			if src.timeout(err) {
				now := time.Now().UnixNano()
				p.tick(now)
				out.flushOld(now)
				r.publish(p, src)
				published = now
				continue
			}
			r.fail(fmt.Errorf("reading packets on %s: %w", r.iface, err))
			break
		}
		p.packet(data, ci)
		// Publish every 1024 packets, and at least every publishEvery of
		// packet time: a slow trickle of packets never lets the read time
		// out, and status would otherwise lag by minutes.
		now := ci.Timestamp.UnixNano()
		if p.st.packets&1023 == 0 || now-published >= int64(publishEvery) || now < published {
			r.publish(p, src)
			published = now
		}
		out.flushOld(now)
	}
	p.flushFlows()
	out.flush()
	r.publish(p, src)
	src.close()
}

// sinkCheck is how often the writer asks the sink whether to rotate when
// no records arrive.
const sinkCheck = time.Second

// write is the writer goroutine: the only one that calls the sink.
func (r *run) write(sink Sink, out *batcher, work <-chan *batch) {
	defer close(r.done)
	defer r.unhook()
	tick := time.NewTicker(sinkCheck)
	defer tick.Stop()
	failed, cutPending := false, false
	due := func() {
		if !failed && !cutPending && sink.Due(time.Now()) {
			cutPending = true
			r.cut.Store(true)
		}
	}
	for {
		select {
		case b, ok := <-work:
			if !ok {
				if err := sink.Close(); err != nil && !failed {
					r.fail(fmt.Errorf("closing the capture sink: %w", err))
				}
				return
			}
			if failed {
				r.lost.Add(uint64(len(b.recs)))
			} else {
				n, err := writeBatch(sink, b)
				r.records.Add(uint64(n))
				if err != nil {
					failed = true
					r.lost.Add(uint64(len(b.recs) - n))
					r.fail(fmt.Errorf("writing capture records: %w", err))
				}
			}
			if b.cut {
				cutPending = false
			}
			out.recycle(b)
			due()
		case <-tick.C:
			due()
		}
	}
}
