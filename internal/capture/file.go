package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/gopacket/gopacket"
)

// ErrNotCapture means a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// DecodeCapture runs the metadata extractor over the pcap or pcapng capture
// in r (plain or gzip-compressed), exactly as a live capture would, and
// writes the records to sink (which it closes). It works on the caller's
// goroutine, in memory bounded whatever the file holds (see reader.go). An
// error says which record it stopped at; the records before it have been
// written. A file that ends inside a record gives an error wrapping
// ErrTruncated.
func DecodeCapture(r io.Reader, sink Sink) (st Stats, err error) {
	defer func() {
		if cerr := sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing output: %w", cerr)
		}
	}()
	cr, err := newCaptureReader(r)
	if err != nil {
		return st, err
	}
	var werr error
	var out *batcher
	out = newBatcher(func(b *batch) {
		if werr == nil {
			n, err := writeBatch(sink, b)
			st.Records += uint64(n)
			werr = err
		}
		out.recycle(b)
	})
	p, err := newProcessor(ModeMetadata, cr.firstLink(), DefaultSnaplen, DefaultFlowIdle, DefaultMaxFlows, rand.Uint64(), out)
	if err != nil {
		return st, err
	}
	defer func() {
		st.Packets, st.Bytes, st.Errors = p.st.packets, p.st.bytes, p.st.errors
		st.FlowsEvicted, st.ReassemblyFull = p.st.evicted, p.st.reasmFull
	}()
	for werr == nil {
		data, ts, origLen, link, rerr := cr.next()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
		if link != p.linkT {
			p.setLink(link) // the reader refused link types the processor cannot decode
		}
		p.packet(data, gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(data), Length: origLen})
	}
	p.flushFlows()
	out.flush()
	if werr != nil {
		return st, fmt.Errorf("writing records: %w", werr)
	}
	return st, err
}

// WriterSink is a Sink that writes every record to a writer, buffered,
// in one endless segment. `carrel traffic decode` writes to standard
// output with it.
type WriterSink struct {
	w *bufio.Writer
}

// NewWriterSink returns a sink writing to w. Close flushes; it does not
// close w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: bufio.NewWriterSize(w, 256<<10)} }

func (s *WriterSink) Write(rec []byte, _ time.Time) error { _, err := s.w.Write(rec); return err }
func (s *WriterSink) Due(time.Time) bool                  { return false }
func (s *WriterSink) Cut() error                          { return s.w.Flush() }
func (s *WriterSink) Close() error                        { return s.w.Flush() }
