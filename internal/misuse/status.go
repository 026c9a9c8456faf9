package misuse

import (
	"context"
	"time"
)

// Status is what `carrel status` shows about traffic logging.
type Status struct {
	On        bool
	Case      string
	Mode      string
	Interface string
	Until     time.Time
	Reason    string // why on, or why off
	Cases     []CaseStatus
	Next      time.Time
	Packets   uint64 // of the running capture, or the last one
	Drops     uint64
	Segments  int   // sealed segments stored on this PC
	Bytes     int64 // their size
	Lost      int   // segments lost to a crash or a failed write, ever
}

// CaseStatus is one case's verdict.
type CaseStatus struct {
	ID, State, Reason string
}

// Status returns the controller's latest decision and counters. While
// capture runs, the packet and drop counts are the engine's live ones, not
// those of the last decision.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	st.Cases = append([]CaseStatus(nil), st.Cases...)
	if st.On {
		es := c.engine.Stats()
		st.Packets, st.Drops = es.Packets, es.KernelDrops
	}
	return st
}

// publish stores the decision and counters for Status. It runs on the
// goroutine that calls step, which owns everything it reads but c.status.
func (c *Controller) publish(d Decision) {
	st := Status{Reason: d.Reason, Next: d.Next, Packets: c.last.Packets, Drops: c.last.KernelDrops}
	for _, cd := range d.Cases {
		st.Cases = append(st.Cases, CaseStatus{ID: cd.ID, State: string(cd.State), Reason: cd.Reason})
	}
	switch r := c.running; {
	case r != nil:
		st.On, st.Case, st.Mode, st.Interface, st.Until = true, r.k.caseID, r.k.mode, r.k.iface, r.until
	case c.quota != nil && d.Capture:
		st.Reason = quotaReason
	case c.failure != "" && d.Capture:
		st.Reason = c.failure
	}
	if c.store != nil {
		if u, err := c.store.Usage(context.Background()); err == nil {
			st.Segments, st.Bytes, st.Lost = u.Segments, u.Bytes, u.Lost
		}
	}
	c.mu.Lock()
	c.status = st
	c.mu.Unlock()
}
