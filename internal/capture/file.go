package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ErrNotCapture means a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// packetReader is what pcapgo's two readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// openCapture detects the format by its magic number.
func openCapture(r io.Reader) (packetReader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w (it is only %d bytes long)", ErrNotCapture, len(magic))
	}
	switch m := binary.LittleEndian.Uint32(magic); {
	case m == 0x0A0D0D0A:
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("reading pcapng header: %w", err)
		}
		return ng, nil
	case m == 0xA1B2C3D4 || m == 0xD4C3B2A1 || m == 0xA1B23C4D || m == 0x4D3CB2A1 ||
		magic[0] == 0x1f && magic[1] == 0x8b: // pcap, or gzip (pcapgo reads gzipped pcap)
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading pcap header: %w", err)
		}
		return pr, nil
	}
	return nil, fmt.Errorf("%w (it starts with % x)", ErrNotCapture, magic)
}

// DecodeCapture runs the metadata extractor over the pcap or pcapng capture
// in r, exactly as a live capture would, and writes the records to sink
// (which it closes). It works on the caller's goroutine. An error says
// which packet it stopped at; the records before it have been written.
func DecodeCapture(r io.Reader, sink Sink) (st Stats, err error) {
	defer func() {
		if cerr := sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing output: %w", cerr)
		}
	}()
	pr, err := openCapture(r)
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
	p, err := newProcessor(ModeMetadata, pr.LinkType(), DefaultSnaplen, DefaultFlowIdle, DefaultMaxFlows, rand.Uint64(), out)
	if err != nil {
		return st, err
	}
	defer func() {
		st.Packets, st.Bytes, st.Errors = p.st.packets, p.st.bytes, p.st.errors
		st.FlowsEvicted, st.ReassemblyFull = p.st.evicted, p.st.reasmFull
	}()
	for werr == nil {
		data, ci, rerr := pr.ZeroCopyReadPacketData()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("reading packet %d: %w", p.st.packets+1, rerr)
			if errors.Is(rerr, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("capture truncated in packet %d: %w", p.st.packets+1, rerr)
			}
			break
		}
		p.packet(data, ci)
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
