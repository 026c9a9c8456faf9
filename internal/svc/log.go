package svc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"github.com/kardianos/service"
)

// Logger returns the logger the daemon should use under the service
// manager. On Windows that is the event log (a service has no console); on
// Linux it is standard error, which systemd hands to journald with the
// unit's name and the priority of each line.
func Logger(s service.Service, fallback *slog.Logger) *slog.Logger {
	if runtime.GOOS != "windows" || Interactive() {
		return fallback
	}
	l, err := s.Logger(nil)
	if err != nil {
		fallback.Warn("cannot open the Windows event log; logging to standard error", "err", err)
		return fallback
	}
	return slog.New(&eventHandler{l: l, level: slog.LevelInfo})
}

// eventHandler writes slog records to a kardianos service.Logger.
type eventHandler struct {
	l     service.Logger
	level slog.Level
	attrs []slog.Attr
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	switch {
	case r.Level >= slog.LevelError:
		return h.l.Error(b.String())
	case r.Level >= slog.LevelWarn:
		return h.l.Warning(b.String())
	default:
		return h.l.Info(b.String())
	}
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *eventHandler) WithGroup(string) slog.Handler { return h }
