package svc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
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
	return eventLogger(s, fallback)
}

// eventLogger returns a logger writing to the Windows event log under the
// service's source, or fallback when the log cannot be opened.
func eventLogger(s service.Service, fallback *slog.Logger) *slog.Logger {
	l, err := s.Logger(nil)
	if err != nil {
		fallback.Warn("cannot open the Windows event log; logging to standard error", "err", err)
		return fallback
	}
	return slog.New(&eventHandler{l: l, level: slog.LevelInfo})
}

// eventHandler writes slog records to a kardianos service.Logger, one
// event per record: the message, then key=value for each attribute, keys
// qualified by their groups (db.path=…). Debug and info become
// information events, warn a warning, error an error.
type eventHandler struct {
	l      service.Logger
	level  slog.Level
	attrs  []slog.Attr // already qualified by the groups open when added
	prefix string      // the open groups, "a.b."
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range h.attrs {
		writeAttr(&b, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.prefix, a)
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		return h.l.Error(b.String())
	case r.Level >= slog.LevelWarn:
		return h.l.Warning(b.String())
	default:
		return h.l.Info(b.String())
	}
}

// writeAttr appends " prefix+key=value", flattening groups.
func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range v.Group() {
			writeAttr(b, prefix, g)
		}
		return
	}
	if a.Equal(slog.Attr{}) {
		return
	}
	fmt.Fprintf(b, " %s%s=%v", prefix, a.Key, v)
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		if h.prefix != "" {
			a = slog.Attr{Key: strings.TrimSuffix(h.prefix, "."), Value: slog.GroupValue(a)}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}
