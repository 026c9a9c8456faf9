package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection limits. One booking-client account opening connections
// without end (20,000 keep-alive connections were tried) must not pin the
// service at its file limit and make bookings time out for everyone: every
// connection costs a descriptor, a goroutine and buffers. A booking client
// needs a handful; the CLI one per command.
const (
	// DefaultMaxConnsPerPeer bounds the connections one account holds open.
	DefaultMaxConnsPerPeer = 32
	// DefaultMaxConns bounds the connections of all non-administrator
	// accounts together. Administrators (root, the service's own account,
	// Administrators/SYSTEM) are held only to the per-account limit, so
	// staff can always reach the service.
	DefaultMaxConns = 128
	// DefaultIdleTimeout closes a keep-alive connection with no request.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultRefusalWindow: refusals of one account for one reason are
	// reported once at once, then at most once per window with a count, so
	// a flood cannot flood the audit log.
	DefaultRefusalWindow = time.Minute
)

// Reasons a connection or request is refused (Refusal.Why).
const (
	WhyNotInGroup         = "not-in-group"
	WhyUnknownPeer        = "unknown-peer"
	WhyTooManyConnections = "too-many-connections"
	WhyBusy               = "busy"
	WhyNotAdmin           = "not-admin"
)

// limitListener admits a connection only while its account holds fewer
// than perPeer and (for non-administrators) all hold fewer than total.
// The rest are answered at once with 503 and a message, and closed; they
// never reach the HTTP server.
type limitListener struct {
	net.Listener
	srv *Server

	mu      sync.Mutex
	total   int
	perPeer map[string]int

	lingering chan struct{} // refused connections being answered (see refuse)
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := l.srv.identify(c)
		if err != nil {
			l.srv.cfg.Log.Warn("cannot identify API caller", "err", err)
			l.srv.refusals.add(Refusal{Why: WhyUnknownPeer})
			l.refuse(c, http.StatusForbidden, "the carrel service cannot tell which account is calling; refused")
			continue
		}
		admin := l.srv.cfg.Allow.Admin(p)
		key := p.key()
		l.mu.Lock()
		why := ""
		switch {
		case l.perPeer[key] >= l.srv.maxPerPeer:
			why = WhyTooManyConnections
		case !admin && l.total >= l.srv.maxConns:
			why = WhyBusy
		default:
			l.perPeer[key]++
			if !admin {
				l.total++
			}
		}
		l.mu.Unlock()
		switch why {
		case WhyTooManyConnections:
			l.srv.refusals.add(Refusal{Peer: p, Why: why})
			l.refuse(c, http.StatusServiceUnavailable, fmt.Sprintf(
				"too many connections from account %s: it holds the limit of %d open; close idle connections and try again", p, l.srv.maxPerPeer))
			continue
		case WhyBusy:
			l.srv.refusals.add(Refusal{Peer: p, Why: why})
			l.refuse(c, http.StatusServiceUnavailable, fmt.Sprintf(
				"the carrel service is serving its limit of %d connections; try again shortly", l.srv.maxConns))
			continue
		}
		pc := &peerConn{Conn: c, peer: p}
		pc.release = func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.perPeer[key]--; l.perPeer[key] <= 0 {
				delete(l.perPeer, key)
			}
			if !admin {
				l.total--
			}
		}
		return pc, nil
	}
}

// peerConn is an admitted connection with its caller; Close frees its
// place.
type peerConn struct {
	net.Conn
	peer    Peer
	once    sync.Once
	release func()
}

func (c *peerConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// refuseLinger bounds how long a refused connection is kept to read its
// request, and maxLingering how many are kept at once.
const (
	refuseLinger = 2 * time.Second
	maxLingering = 64
)

// refuse answers a connection that will not be served with one HTTP
// response and closes it, without holding up Accept. The answer is written
// at once; the connection is then kept until the caller has sent its
// request and closed, or for refuseLinger: closing a Unix socket whose
// request is unread would make the caller's write fail (EPIPE) before it
// reads the answer. Beyond maxLingering such connections (a flood), the
// rest are answered and closed at once.
func (l *limitListener) refuse(c net.Conn, code int, msg string) {
	body := fmt.Sprintf("{\"error\":%q}\n", msg)
	resp := []byte(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body))
	select {
	case l.lingering <- struct{}{}:
		go func() {
			defer func() { <-l.lingering }()
			c.SetDeadline(time.Now().Add(refuseLinger))
			c.Write(resp)
			io.Copy(io.Discard, io.LimitReader(c, MaxBody+16<<10))
			c.Close()
		}()
	default:
		// The answer fits in any socket or pipe buffer of a fresh
		// connection; the deadline only guards against the impossible.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Write(resp)
		c.Close()
	}
}

// key names the account for the per-account limit.
func (p Peer) key() string {
	if p.SID != "" {
		return p.SID
	}
	return fmt.Sprintf("uid:%d", p.UID)
}

// refusalGate passes refusals on to the reporter without letting a flood
// through: the first refusal of an account for a reason is reported at
// once; later ones within the window are counted and reported together
// when it ends, and the window goes on while refusals keep coming.
type refusalGate struct {
	window time.Duration
	report func(Refusal)

	mu      sync.Mutex
	pending map[string]*pendingRefusals
	closed  bool
}

type pendingRefusals struct {
	first Refusal
	count int // refusals since the last report
	timer *time.Timer
}

func (g *refusalGate) add(r Refusal) {
	if g.report == nil {
		return
	}
	k := r.Peer.key() + "\x00" + r.Why
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if p, ok := g.pending[k]; ok {
		p.count++
		g.mu.Unlock()
		return
	}
	p := &pendingRefusals{first: r}
	g.pending[k] = p
	p.timer = time.AfterFunc(g.window, func() { g.flush(k) })
	g.mu.Unlock()
	r.Count = 1
	g.send(r)
}

// flush reports what the window counted; a quiet window ends the entry.
func (g *refusalGate) flush(k string) {
	g.mu.Lock()
	p, ok := g.pending[k]
	if !ok || g.closed {
		g.mu.Unlock()
		return
	}
	n := p.count
	p.count = 0
	if n == 0 {
		delete(g.pending, k)
	} else {
		p.timer.Reset(g.window)
	}
	g.mu.Unlock()
	if n > 0 {
		r := p.first
		r.Count = n
		g.send(r)
	}
}

// close reports every count still held and stops the gate.
func (g *refusalGate) close() {
	g.mu.Lock()
	g.closed = true
	var left []Refusal
	for _, p := range g.pending {
		p.timer.Stop()
		if p.count > 0 {
			r := p.first
			r.Count = p.count
			left = append(left, r)
		}
	}
	g.pending = nil
	g.mu.Unlock()
	for _, r := range left {
		g.send(r)
	}
}

func (g *refusalGate) send(r Refusal) {
	lookupName(&r.Peer)
	g.report(r)
}
