package capture

// streamState follows the start of one direction of a TCP flow while an
// extractor waits for more bytes: a ClientHello, a request head or a
// DNS-over-TCP question split over several segments. Only in-order bytes
// are joined; a gap ends the attempt. The buffers come from a fixed pool,
// so a flood of half-sent hellos can only exhaust the pool (counted in
// Stats.ReassemblyFull), never memory.
type streamState struct {
	slot int32  // index+1 into the pool's buffers; 0: not collecting
	dir  uint8  // which side's bytes are collected (0: a, 1: b)
	what uint8  // appTLS, appHTTP or appDNS
	next uint32 // sequence number of the next byte expected
}

// What a stream is collected for.
const (
	appNone uint8 = iota
	appTLS
	appHTTP
	appDNS
	appQUIC     // a UDP flow's client Initials (slot in the QUIC pool, next: its generation)
	appQUICDone // a UDP flow whose ClientHello was found or given up
)

// reasmSlots is how many flows may wait for more bytes at once.
const reasmSlots = 64

// reasmPool holds the reassembly buffers, allocated once.
type reasmPool struct {
	bufs [][]byte
	free []int32
}

func newReasmPool() *reasmPool {
	p := &reasmPool{bufs: make([][]byte, reasmSlots), free: make([]int32, 0, reasmSlots)}
	mem := make([]byte, reasmSlots*maxHello)
	for i := range p.bufs {
		p.bufs[i] = mem[i*maxHello : i*maxHello : (i+1)*maxHello]
		p.free = append(p.free, int32(i+1))
	}
	return p
}

// take returns a free slot (index+1), or 0 when none is free.
func (p *reasmPool) take() int32 {
	if len(p.free) == 0 {
		return 0
	}
	s := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.bufs[s-1] = p.bufs[s-1][:0]
	return s
}

func (p *reasmPool) release(st *streamState) {
	if st.slot != 0 {
		p.free = append(p.free, st.slot)
	}
	*st = streamState{}
}

// seqBefore reports whether sequence number a comes before b (mod 2^32).
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }
