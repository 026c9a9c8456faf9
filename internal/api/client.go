package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ErrNotRunning is wrapped when nothing answers at the API address.
var ErrNotRunning = errors.New("the carrel service is not running")

// StatusError is an error response from the service.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// Client calls the API of the local service.
type Client struct {
	addr string
	http *http.Client
}

// NewClient returns a client for the socket (Linux) or pipe (Windows) addr.
func NewClient(addr string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, addr) },
	}
	return &Client{addr: addr, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Start starts a booking.
func (c *Client) Start(ctx context.Context, r StartRequest) (Booking, error) {
	var b Booking
	err := c.do(ctx, http.MethodPost, "/v1/bookings/start", r, &b)
	return b, err
}

// End ends a booking.
func (c *Client) End(ctx context.Context, ref string) (Booking, error) {
	var b Booking
	err := c.do(ctx, http.MethodPost, "/v1/bookings/end", EndRequest{Ref: ref}, &b)
	return b, err
}

// List lists bookings overlapping [from, to); zero times leave a side open.
func (c *Client) List(ctx context.Context, from, to time.Time) ([]Booking, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	var bs []Booking
	err := c.do(ctx, http.MethodGet, "/v1/bookings?"+q.Encode(), nil, &bs)
	return bs, err
}

// ByPatron lists every stored booking made with card (root/Administrators
// only; the service records the look-up).
func (c *Client) ByPatron(ctx context.Context, card string) ([]Booking, error) {
	var bs []Booking
	err := c.do(ctx, http.MethodPost, "/v1/bookings/patron", PatronRequest{Patron: card}, &bs)
	return bs, err
}

// Status fetches the service's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://carrel"+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.callError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &StatusError{Code: resp.StatusCode, Msg: e.Error}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the service's answer: %w", err)
	}
	return nil
}

// callError says why a call reached no answer. A refused pipe server
// (Windows) is said as it is: its error names the pipe and who serves it,
// and the request and URL around it would only hide that.
func (c *Client) callError(err error) error {
	var impostor *PipeImpostorError
	switch {
	case errors.As(err, &impostor):
		return impostor
	case notRunning(err):
		return fmt.Errorf("%w (nothing answers at %s)", ErrNotRunning, c.addr)
	}
	return fmt.Errorf("calling the carrel service at %s: %w", c.addr, err)
}
