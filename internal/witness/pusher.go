package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/carrel-lib/carrel/internal/audit"
)

// Target is one witness to push to.
type Target struct {
	Name string // the config's name for it
	URL  string // where it takes add-checkpoint (the request goes to URL/add-checkpoint)
	Key  audit.WitnessKey
}

// Options configure a Pusher.
type Options struct {
	Log    *audit.Log
	Logger *slog.Logger
	// Dial connects to a witness's host:port; nil dials directly. Under
	// the hardened unit it is the relay's (DialRelay).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Backoff returns how long to wait before attempt n+1 after n failed
	// attempts in a row (n ≥ 1); nil is DefaultBackoff. Tests inject it.
	Backoff func(n int) time.Duration
	// Poll is how often a worker looks for a checkpoint it was not told
	// of (one another process signed); 0 is one minute.
	Poll time.Duration
	// Timeout bounds one request, connection included; 0 is 30 s.
	Timeout time.Duration
	// Result, when set, is called after every push with its outcome, from
	// the worker's goroutine (tests wait on it).
	Result func(Result)
	// UserAgent names carrel and its version in requests.
	UserAgent string
}

// Result is the outcome of one push to one witness.
type Result struct {
	Witness string
	Size    int64 // the size of the checkpoint pushed
	// Cosigned is true when the witness cosigned it and the cosignature was
	// stored; Cosignatures are what was stored.
	Cosigned     bool
	Cosignatures []audit.Cosignature
	// Refusal is set when the witness refused because the log is not an
	// extension of what it cosigned; NewRefusal when that was recorded as
	// a new witness.refused entry.
	Refusal    *audit.Refusal
	NewRefusal bool
	// Err is set for every other failure (unreachable, an error of its
	// own, an answer that does not verify).
	Err error
	// Resent counts the 409 answers followed by a request from the size
	// the witness named.
	Resent int
	Took   time.Duration // from the first request to the outcome
}

// DefaultBackoff waits 5 s after the first failure, doubling up to 10 min,
// each wait spread by ±20 % so that a fleet does not retry in step.
func DefaultBackoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Pusher pushes the log's checkpoints to its targets, one worker each.
type Pusher struct {
	o      Options
	client *http.Client
	reload chan []Target

	mu      sync.Mutex
	targets []Target // the latest SetTargets
}

// New returns a Pusher; Run starts it.
func New(o Options) *Pusher {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Poll <= 0 {
		o.Poll = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: o.Timeout}).DialContext
	}
	tr := &http.Transport{
		Proxy:                  nil, // never an environment's proxy: the relay is the only way out
		DialContext:            dial,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    1,
		ForceAttemptHTTP2:      true,
	}
	return &Pusher{o: o, client: &http.Client{Transport: tr, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errNoRedirect }},
		reload: make(chan []Target, 1)}
}

var errNoRedirect = errors.New("the witness answered with a redirect; carrel follows none (set its final address in audit.witnesses)")

// SetTargets replaces the witnesses pushed to; Run applies it at once.
func (p *Pusher) SetTargets(ts []Target) {
	p.mu.Lock()
	p.targets = ts
	p.mu.Unlock()
	for {
		select {
		case p.reload <- ts:
			return
		default:
		}
		select { // drop a reload Run has not taken yet: this one replaces it
		case <-p.reload:
		default:
		}
	}
}

// Run pushes until ctx ends: each new checkpoint the log signs, and what
// another process signed within Poll.
func (p *Pusher) Run(ctx context.Context) {
	type running struct {
		t      Target
		kick   chan struct{}
		cancel context.CancelFunc
	}
	workers := map[string]*running{}
	var wg sync.WaitGroup
	stop := func(name string) {
		workers[name].cancel()
		delete(workers, name)
	}
	defer func() {
		for name := range workers {
			stop(name)
		}
		wg.Wait()
		p.client.CloseIdleConnections()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.o.Log.Signed():
			for _, w := range workers {
				select {
				case w.kick <- struct{}{}:
				default:
				}
			}
		case ts := <-p.reload:
			want := map[string]Target{}
			for _, t := range ts {
				want[t.Name] = t
			}
			for name, w := range workers {
				if t, ok := want[name]; !ok || t.URL != w.t.URL || t.Key.Text != w.t.Key.Text {
					stop(name)
				}
			}
			for _, t := range ts {
				if _, ok := workers[t.Name]; ok {
					continue
				}
				wctx, cancel := context.WithCancel(ctx)
				w := &running{t: t, kick: make(chan struct{}, 1), cancel: cancel}
				workers[t.Name] = w
				wg.Add(1)
				go func() { defer wg.Done(); p.work(wctx, t, w.kick) }()
			}
		}
	}
}

// PushNow pushes the latest checkpoint to every witness once, in parallel,
// and returns when all have answered or ctx ends. The service calls it
// after Run has returned, with its shutdown checkpoint, under a short
// deadline: the witnesses then know the log as it was when the service
// stopped.
func (p *Pusher) PushNow(ctx context.Context) []Result {
	p.mu.Lock()
	ts := p.targets
	p.mu.Unlock()
	out := make([]Result, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.push(ctx, t, -1)
			var last string
			if r := out[i].Refusal; r != nil && !out[i].NewRefusal {
				last = r.Detail // the workers said so already
			}
			p.logResult(t, out[i], 0, &last)
			if p.o.Result != nil {
				p.o.Result(out[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// work pushes to one witness until ctx ends: at start, when kicked, every
// Poll, and after a failure when its backoff has passed. While backing off
// it does not push early: a kick is remembered for the retry, which pushes
// the latest checkpoint anyway.
func (p *Pusher) work(ctx context.Context, t Target, kick <-chan struct{}) {
	poll := time.NewTicker(p.o.Poll)
	defer poll.Stop()
	retry := time.NewTimer(0) // the first push, at once
	defer retry.Stop()
	failures := 0
	lastErr := ""
	// The size this worker saw the witness cosign. Until it has seen one,
	// it asks the witness even when the stored state says the latest
	// checkpoint is cosigned: that state is on the PC, and a log restored
	// from an old copy carries an old state that agrees with it.
	confirmed := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if failures > 0 {
				continue
			}
		case <-poll.C:
			if failures > 0 {
				continue
			}
		case <-retry.C:
		}
		res := p.push(ctx, t, confirmed)
		if ctx.Err() != nil {
			return
		}
		if res.Cosigned {
			confirmed = res.Size
		}
		p.logResult(t, res, failures, &lastErr)
		if p.o.Result != nil {
			p.o.Result(res)
		}
		if res.Err == nil && res.Refusal == nil {
			failures = 0
			continue
		}
		failures++
		retry.Reset(p.o.Backoff(failures))
	}
}

// logResult writes what the service log must say, without repeating the
// same failure at every retry: a new refusal is an error, a new failure a
// warning, a success after failures a note.
func (p *Pusher) logResult(t Target, res Result, failures int, last *string) {
	l := p.o.Logger.With("witness", t.Name, "url", t.URL)
	switch {
	case res.Refusal != nil:
		r := res.Refusal
		msg := "witness refused the audit log: it is not an extension of what the witness cosigned (rolled back, rewritten, or wiped and restarted); see carrel status, then carrel audit witness ack " + t.Name
		if res.NewRefusal || *last != r.Detail {
			l.Error(msg, "why", r.Why, "witness_size", r.WitnessSize, "log_size", r.LogSize, "detail", r.Detail, "entry", r.Entry)
		}
		*last = r.Detail
	case res.Err != nil:
		if msg := res.Err.Error(); msg != *last {
			l.Warn("pushing the audit checkpoint to a witness failed; retrying with backoff", "size", res.Size, "err", msg)
			*last = msg
		}
	case res.Cosigned:
		if failures > 0 {
			l.Info("witness cosigned the audit checkpoint again", "size", res.Size, "took", res.Took)
		} else {
			l.Debug("witness cosigned the audit checkpoint", "size", res.Size, "took", res.Took)
		}
		*last = ""
	}
}

// maxConflicts bounds how often one push follows a 409 to another size.
const maxConflicts = 3

// push sends the latest checkpoint to t and records what came of it;
// nothing when the witness was seen to cosign it (confirmed).
func (p *Pusher) push(ctx context.Context, t Target, confirmed int64) Result {
	start := time.Now()
	res := Result{Witness: t.Name}
	done := func() Result { res.Took = time.Since(start); return res }
	fail := func(format string, a ...any) Result {
		res.Err = fmt.Errorf(format, a...)
		if err := p.o.Log.WitnessFailed(context.WithoutCancel(ctx), t.Name, t.Key.Text, res.Err.Error()); err != nil {
			res.Err = errors.Join(res.Err, err)
		}
		return done()
	}
	cp, err := p.o.Log.Latest(ctx)
	if errors.Is(err, audit.ErrNoCheckpoint) {
		return done()
	}
	if err != nil {
		return fail("reading the latest checkpoint: %v", err)
	}
	res.Size = cp.Size
	st, known, err := p.o.Log.WitnessState(ctx, t.Name)
	if err != nil {
		return fail("%v", err)
	}
	var old int64
	if known && st.Key == t.Key.Text {
		old = st.Size
		if old == cp.Size && confirmed == cp.Size && st.Error == "" {
			res.Cosigned = true // nothing new since its last cosignature
			return done()
		}
	}
	if old > cp.Size {
		// The state says the witness cosigned more than the log holds:
		// ask the witness itself, whose 409 answer is the word that counts.
		old = 0
	}
	for range maxConflicts {
		var proof tlog.TreeProof
		if old > 0 && old < cp.Size {
			cons, err := p.o.Log.ProveConsistencyAt(ctx, old, cp)
			if err != nil {
				return fail("%v", err)
			}
			proof = cons.Hashes
		}
		status, body, err := p.post(ctx, t, requestBody(old, proof, cp.Note))
		if err != nil {
			return fail("witness unreachable: %v", err)
		}
		a := readAnswer(status, body)
		switch a.kind {
		case answerCosigned:
			cs, err := p.o.Log.AddCosignatures(context.WithoutCancel(ctx), t.Name, t.Key, cp, a.lines)
			if err != nil {
				return fail("the witness's answer is not a valid cosignature by its key in audit.witnesses: %v", err)
			}
			res.Cosigned, res.Cosignatures = true, cs
			return done()
		case answerConflict:
			switch {
			case a.size > cp.Size:
				return p.refused(ctx, t, &res, done, audit.Refusal{Why: audit.RefusedRolledBack, WitnessSize: a.size, LogSize: cp.Size,
					Detail: fmt.Sprintf("the witness has cosigned %d entries of this log's origin, but the log has only %d: it was rolled back, or wiped and started again", a.size, cp.Size)})
			case a.size == old:
				return fail("the witness %s, the size carrel sent", a.msg)
			}
			if err := p.o.Log.WitnessResync(context.WithoutCancel(ctx), t.Name, t.Key.Text, a.size); err != nil {
				return fail("%v", err)
			}
			old = a.size
			res.Resent++
		case answerRefused:
			r := audit.Refusal{Why: a.why, LogSize: cp.Size, Detail: "the witness " + a.msg}
			if a.why == audit.RefusedNotExtension {
				r.WitnessSize = old
			}
			return p.refused(ctx, t, &res, done, r)
		case answerNotRegistered:
			return fail("the witness %s: it does not know this log; register its origin %q and key with the witness (README, Witnesses)", a.msg, cp.Origin)
		default:
			return fail("the witness %s", a.msg)
		}
	}
	return fail("the witness answered 409 %d times in a row; trying again later", maxConflicts)
}

func (p *Pusher) refused(ctx context.Context, t Target, res *Result, done func() Result, r audit.Refusal) Result {
	stored, isNew, err := p.o.Log.WitnessRefused(context.WithoutCancel(ctx), t.Name, t.Key.Text, r)
	if err != nil {
		// The refusal could not be recorded: still loud, as an error.
		res.Err = fmt.Errorf("%s (%s); recording it failed: %w", r.Detail, r.Why, err)
		return done()
	}
	res.Refusal, res.NewRefusal = &stored, isNew
	return done()
}

// post sends one add-checkpoint request and returns the witness's answer,
// read up to maxAnswer.
func (p *Pusher) post(ctx context.Context, t Target, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(t.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if p.o.UserAgent != "" {
		req.Header.Set("User-Agent", p.o.UserAgent)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(b) > maxAnswer {
		return 0, nil, fmt.Errorf("the answer is longer than %d bytes", maxAnswer)
	}
	return resp.StatusCode, b, nil
}
