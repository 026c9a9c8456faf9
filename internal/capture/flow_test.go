package capture

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFlowTableModel drives the table with random inserts and sweeps and
// checks it against a map: every flow is found, counted once, and the
// table never holds more than its bound.
func TestFlowTableModel(t *testing.T) {
	const max = 64
	tab := newFlowTable(max, 7)
	model := map[flowKey]int64{}
	rng := rand.New(rand.NewPCG(3, 4))
	emitted := 0
	for step := int64(1); step < 20000; step++ {
		var k flowKey
		k.proto = protoUDP
		k.a[15] = byte(rng.IntN(12))
		k.aPort = uint16(rng.IntN(10))
		f, created, ev := tab.lookup(&k)
		if ev.used {
			emitted++
			if _, ok := model[ev.key]; !ok {
				t.Fatalf("step %d: evicted a flow the model does not have", step)
			}
			delete(model, ev.key)
		}
		if _, had := model[k]; had == created {
			t.Fatalf("step %d: lookup created = %v, but the model had it = %v", step, created, had)
		}
		f.last = step
		model[k] = step
		if tab.n != len(model) || tab.n > max {
			t.Fatalf("step %d: table holds %d, model %d, bound %d", step, tab.n, len(model), max)
		}
		if step%500 == 0 {
			cutoff := step - int64(rng.IntN(300))
			tab.sweep(cutoff, math.MinInt64, func(f *flow) {
				if f.last >= cutoff {
					t.Fatalf("sweep(%d) emitted a flow last seen at %d", cutoff, f.last)
				}
				delete(model, f.key)
			})
			for k, last := range model {
				if last < cutoff {
					t.Fatalf("sweep(%d) kept a flow last seen at %d", cutoff, last)
				}
				if g, created, _ := tab.lookup(&k); created || g.last != last {
					t.Fatalf("after sweep a kept flow is lost (created %v)", created)
				}
			}
		}
	}
	if emitted == 0 {
		t.Errorf("no evictions in 20000 steps over 120 keys with room for 64; the bound was never exercised")
	}
	n := 0
	tab.sweep(math.MaxInt64, math.MinInt64, func(*flow) { n++ })
	if n != len(model) || tab.n != 0 {
		t.Errorf("final sweep emitted %d, model has %d, table left with %d", n, len(model), tab.n)
	}
}
