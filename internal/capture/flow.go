package capture

import "encoding/binary"

// flowKey is a flow's 5-tuple in canonical order (the lower endpoint
// first), so both directions find the same entry. IPv4 addresses are held
// IPv4-mapped.
type flowKey struct {
	a, b         [16]byte
	aPort, bPort uint16
	proto        uint8
	v4           bool
}

// flow is one entry of the flow table. Times are Unix nanoseconds: no
// pointers, so the table costs the garbage collector nothing to scan.
type flow struct {
	key  flowKey
	used bool
	// aFirst says the a side sent the first packet seen: it is the "src"
	// of the flow record.
	aFirst      bool
	first, last int64
	pkts        [2]uint64 // [0]: sent by a, [1]: sent by b
	bytes       [2]uint64
	// stream: reassembly of the start of one direction for SNI, Host or a
	// DNS-over-TCP question; see reasm.go.
	stream streamState
}

// flowTable is a fixed-size open-addressing hash table (linear probing,
// backward-shift deletion). It is sized once, so updating it never
// allocates, and bounded, so a flood of new flows cannot grow memory.
type flowTable struct {
	slots []flow
	mask  uint64
	n     int // used entries
	max   int // most entries kept; past it the oldest in a probe run is evicted
	seed  uint64
}

func newFlowTable(maxFlows int, seed uint64) *flowTable {
	size := 1
	for size < 2*maxFlows {
		size <<= 1
	}
	return &flowTable{slots: make([]flow, size), mask: uint64(size - 1), max: maxFlows, seed: seed | 1}
}

func (t *flowTable) hash(k *flowKey) uint64 {
	// One multiply per word and one finaliser: cheap on the per-packet
	// path, and the random seed keeps senders from aiming collisions.
	h := t.seed ^
		binary.LittleEndian.Uint64(k.a[0:8])*0x9e3779b97f4a7c15 ^
		binary.LittleEndian.Uint64(k.a[8:16])*0xc2b2ae3d27d4eb4f ^
		binary.LittleEndian.Uint64(k.b[0:8])*0x165667b19e3779f9 ^
		binary.LittleEndian.Uint64(k.b[8:16])*0xd6e8feb86659fd93 ^
		(uint64(k.aPort)<<24|uint64(k.bPort)<<8|uint64(k.proto))*0xff51afd7ed558ccd
	return mix(h)
}

// mix is the finaliser of SplitMix64.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// lookup returns the entry for k, creating it if needed. evicted is a copy
// of an entry that had to make room (its used is false when none did); the
// caller reports it before the next lookup.
func (t *flowTable) lookup(k *flowKey) (f *flow, created bool, evicted flow) {
	home := t.hash(k) & t.mask
	i := home
	for ; t.slots[i].used; i = (i + 1) & t.mask {
		if t.slots[i].key == *k {
			return &t.slots[i], false, evicted
		}
	}
	if t.n >= t.max {
		// Full: evict the least recently seen of the entries near the
		// home slot, which keeps the eviction cheap and bounded.
		oldest := -1
		for p := range uint64(8) {
			j := (home + p) & t.mask
			if s := &t.slots[j]; s.used && (oldest < 0 || s.last < t.slots[oldest].last) {
				oldest = int(j)
			}
		}
		if oldest < 0 { // the run near home is empty: evict anything
			for oldest = range t.slots {
				if t.slots[oldest].used {
					break
				}
			}
		}
		evicted = t.slots[oldest]
		t.remove(uint64(oldest))
		// The removal may have shifted the probe run back: find the
		// free slot again.
		for i = home; t.slots[i].used; i = (i + 1) & t.mask {
		}
	}
	t.slots[i] = flow{key: *k, used: true}
	t.n++
	return &t.slots[i], true, evicted
}

// remove deletes slot i and shifts later members of its probe run back,
// so lookups never need tombstones.
func (t *flowTable) remove(i uint64) {
	t.slots[i] = flow{}
	t.n--
	for j := (i + 1) & t.mask; t.slots[j].used; j = (j + 1) & t.mask {
		home := t.hash(&t.slots[j].key) & t.mask
		// Move j into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			t.slots[j] = flow{}
			i = j
		}
	}
}

// sweep calls emit for, and removes, every flow whose last packet is
// before idle or whose first is before active (all flows when idle is
// math.MaxInt64).
func (t *flowTable) sweep(idle, active int64, emit func(*flow)) {
	for i := uint64(0); i < uint64(len(t.slots)); {
		s := &t.slots[i]
		if s.used && (s.last < idle || s.first < active) {
			emit(s)
			t.remove(i)
			continue // a later entry may have moved into i
		}
		i++
	}
}
