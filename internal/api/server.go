package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/carrel-lib/carrel/internal/booking"
)

// Bookings is what the API needs of the register.
type Bookings interface {
	Start(ctx context.Context, r booking.StartRequest) (booking.Booking, error)
	End(ctx context.Context, ref string) (booking.Booking, error)
	List(ctx context.Context, from, to time.Time) ([]booking.Booking, error)
	ByPatron(ctx context.Context, card string) ([]booking.Booking, error)
}

// Refusal is a connection or request turned away because of who sent it
// or how many connections it holds.
type Refusal struct {
	Peer Peer
	Why  string // a short machine word: one of the Why constants
	// Count is how many refusals of this account for this reason the
	// report stands for (see DefaultRefusalWindow); at least 1.
	Count int
}

// Config wires a Server.
type Config struct {
	Bookings Bookings
	// PC returns the id of this PC for new bookings (it follows config reloads).
	PC func() string
	// Status builds the body of GET /v1/status.
	Status func(ctx context.Context) (Status, error)
	// Allow decides whether a peer may call the API.
	Allow *Authorizer
	// Refused is told about refused connections and requests (the daemon
	// audits them): the first of an account for a reason at once, then
	// at most one count per RefusalWindow.
	Refused func(Refusal)
	// PatronLookup records who looked up a patron's bookings and how many
	// were found (never the card). If it fails, the result is withheld:
	// no look-up goes unrecorded.
	PatronLookup func(p Peer, found int) error
	Log          *slog.Logger

	// Limits; zero means the Default of the same name.
	MaxConns        int
	MaxConnsPerPeer int
	IdleTimeout     time.Duration
	RefusalWindow   time.Duration
}

// Server serves the API on one listener.
type Server struct {
	cfg                  Config
	http                 *http.Server
	maxConns, maxPerPeer int
	refusals             *refusalGate
	identify             func(net.Conn) (Peer, error) // peerOf; tests stand in other accounts
}

type peerKey struct{}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// NewServer returns a server; call Serve with a listener from Listen.
func NewServer(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, identify: peerOf,
		maxConns:   orDefault(cfg.MaxConns, DefaultMaxConns),
		maxPerPeer: orDefault(cfg.MaxConnsPerPeer, DefaultMaxConnsPerPeer),
		refusals: &refusalGate{window: orDefault(cfg.RefusalWindow, DefaultRefusalWindow), report: cfg.Refused,
			pending: map[string]*pendingRefusals{}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/bookings/start", s.start)
	mux.HandleFunc("POST /v1/bookings/end", s.end)
	mux.HandleFunc("GET /v1/bookings", s.list)
	mux.HandleFunc("POST /v1/bookings/patron", s.byPatron)
	mux.HandleFunc("GET /v1/status", s.status)
	s.http = &http.Server{
		Handler:           s.authorize(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    8 << 10,
		// The caller was identified when the connection was admitted.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if pc, ok := c.(*peerConn); ok {
				return context.WithValue(ctx, peerKey{}, pc.peer)
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s
}

// Serve accepts connections on l until Shutdown, within the connection
// limits.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(&limitListener{Listener: l, srv: s, perPeer: map[string]int{},
		lingering: make(chan struct{}, maxLingering)})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for requests in flight, and reports the
// refusals still being counted.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.refusals.close()
	return err
}

func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(Peer)
		why := WhyUnknownPeer
		if ok {
			why = s.cfg.Allow.Check(p)
		}
		if why != "" {
			s.refusals.add(Refusal{Peer: p, Why: why})
			lookupName(&p)
			writeError(w, http.StatusForbidden, fmt.Sprintf("account %s may not use the carrel API (%s); add it to the booking-client group", p, why))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if err := decode(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	br := booking.StartRequest{PC: s.cfg.PC(), Ref: req.Ref, Patron: req.Patron}
	if req.PlannedEnd != nil {
		br.PlannedEnd = *req.PlannedEnd
	}
	b, err := s.cfg.Bookings.Start(r.Context(), br)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, wireBooking(b))
}

func (s *Server) end(w http.ResponseWriter, r *http.Request) {
	var req EndRequest
	if err := decode(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := s.cfg.Bookings.End(r.Context(), req.Ref)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wireBooking(b))
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	var from, to time.Time
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := r.URL.Query().Get(q.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: not an RFC 3339 time: %q", q.name, v))
			return
		}
		*q.dst = t
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		writeError(w, http.StatusBadRequest, "to must be after from")
		return
	}
	bs, err := s.cfg.Bookings.List(r.Context(), from, to)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]Booking, 0, len(bs))
	for _, b := range bs {
		out = append(out, wireBooking(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// byPatron answers a patron's access request, for staff: only
// administrators may ask, and every look-up is recorded.
func (s *Server) byPatron(w http.ResponseWriter, r *http.Request) {
	p, _ := r.Context().Value(peerKey{}).(Peer)
	if !s.cfg.Allow.Admin(p) {
		s.refusals.add(Refusal{Peer: p, Why: WhyNotAdmin})
		writeError(w, http.StatusForbidden, "only root/Administrators may look up a patron's bookings: a patron's access request is answered by staff")
		return
	}
	var req PatronRequest
	if err := decode(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	bs, err := s.cfg.Bookings.ByPatron(r.Context(), req.Patron)
	if err != nil {
		s.fail(w, err)
		return
	}
	lookupName(&p)
	if s.cfg.PatronLookup == nil {
		writeError(w, http.StatusInternalServerError, "patron look-ups cannot be recorded by this service; nothing is returned")
		return
	}
	if err := s.cfg.PatronLookup(p, len(bs)); err != nil {
		s.cfg.Log.Error("recording a patron look-up", "err", err)
		writeError(w, http.StatusInternalServerError, "the look-up could not be recorded in the audit log, so its result is withheld; see the service log")
		return
	}
	out := make([]Booking, 0, len(bs))
	for _, b := range bs {
		out = append(out, wireBooking(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Status(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// fail maps a booking error to a status; anything unexpected is logged and
// reported without internals.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, booking.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, booking.ErrAlreadyOpen):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, booking.ErrNoOpenBooking):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, booking.ErrDiskFull):
		// The client must learn that nothing was stored and that retrying
		// later can work; staff learn it from status and the log.
		s.cfg.Log.Error("booking refused: disk full; free space in the data folder's file system", "err", err)
		writeError(w, http.StatusInsufficientStorage,
			"disk full: the booking was not recorded because the carrel data folder's disk has no space left; free space on the PC and try again")
	default:
		s.cfg.Log.Error("API request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; see the service log")
	}
}

func wireBooking(b booking.Booking) Booking {
	out := Booking{PC: b.PC, Ref: b.Ref, Start: b.Start, Ended: string(b.Ended), HasPatron: b.HasPatron}
	if !b.PlannedEnd.IsZero() {
		t := b.PlannedEnd
		out.PlannedEnd = &t
	}
	if !b.End.IsZero() {
		t := b.End
		out.End = &t
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}
