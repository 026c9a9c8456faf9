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

	lastPackets, lastDrops uint64
	failure                string // why the last start failed
}

// CaseStatus is one case's verdict.
type CaseStatus struct {
	ID, State, Reason string
}

// Status returns the controller's latest decision and counters.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	st.Cases = append([]CaseStatus(nil), st.Cases...)
	return st
}

// publish stores the decision and counters for Status. Called from Run.
func (c *Controller) publish(d Decision) {
	st := Status{Reason: d.Reason, Next: d.Next}
	for _, cd := range d.Cases {
		st.Cases = append(st.Cases, CaseStatus{ID: cd.ID, State: string(cd.State), Reason: cd.Reason})
	}
	if r := c.running; r != nil {
		st.On, st.Case, st.Mode, st.Interface, st.Until = true, r.caseID, r.mode, r.iface, r.until
		es := c.engine.Stats()
		st.Packets, st.Drops = es.Packets, es.KernelDrops
	}
	if c.store != nil {
		if u, err := c.store.Usage(context.Background()); err == nil {
			st.Segments, st.Bytes, st.Lost = u.Segments, u.Bytes, u.Lost
		}
	}
	c.mu.Lock()
	if !st.On {
		st.Packets, st.Drops = c.status.lastPackets, c.status.lastDrops
		if c.blocked != "" {
			st.Reason = c.blocked
		} else if c.status.failure != "" && d.Capture {
			st.Reason = c.status.failure
		}
	}
	st.lastPackets, st.lastDrops, st.failure = c.status.lastPackets, c.status.lastDrops, c.status.failure
	if st.On {
		st.failure = ""
	}
	c.status = st
	c.mu.Unlock()
}

// setReason records why a capture that should run does not.
func (c *Controller) setReason(why string) {
	c.mu.Lock()
	c.status.failure = why
	c.mu.Unlock()
}
