package svc

import (
	"fmt"
	"log/slog"
	"testing"
)

// eventLog records what would go to the Windows event log.
type eventLog struct{ events []string }

func (e *eventLog) add(kind string, v ...any) error {
	e.events = append(e.events, kind+": "+fmt.Sprint(v...))
	return nil
}
func (e *eventLog) Error(v ...any) error              { return e.add("error", v...) }
func (e *eventLog) Warning(v ...any) error            { return e.add("warning", v...) }
func (e *eventLog) Info(v ...any) error               { return e.add("info", v...) }
func (e *eventLog) Errorf(f string, a ...any) error   { return e.add("error", fmt.Sprintf(f, a...)) }
func (e *eventLog) Warningf(f string, a ...any) error { return e.add("warning", fmt.Sprintf(f, a...)) }
func (e *eventLog) Infof(f string, a ...any) error    { return e.add("info", fmt.Sprintf(f, a...)) }

// TestEventHandler: the service's log records become one event each, of
// the right kind, with every attribute (groups flattened); debug records
// are dropped at the default level.
func TestEventHandler(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want []string
	}{
		{"info", func(l *slog.Logger) { l.Info("carrel started", "pc", "pc-01", "mode", "bookings") },
			[]string{"info: carrel started pc=pc-01 mode=bookings"}},
		{"levels", func(l *slog.Logger) {
			l.Debug("hidden")
			l.Warn("config refused", "key", "case[0].end")
			l.Error("capture stopped", "err", fmt.Errorf("Npcap is not installed"))
		}, []string{"warning: config refused key=case[0].end", "error: capture stopped err=Npcap is not installed"}},
		{"with and groups", func(l *slog.Logger) {
			l.With("data", `C:\ProgramData\carrel`).WithGroup("api").With("pipe", `\\.\pipe\carrel`).
				Info("refused", "peer", "PC01\\guest", slog.Group("req", "path", "/v1/bookings/start"))
		}, []string{`info: refused data=C:\ProgramData\carrel api.pipe=\\.\pipe\carrel api.peer=PC01\guest api.req.path=/v1/bookings/start`}},
		{"empty group and attr", func(l *slog.Logger) { l.WithGroup("").Info("m", slog.Attr{}, slog.Group("", "a", 1)) },
			[]string{"info: m a=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &eventLog{}
			tt.log(slog.New(&eventHandler{l: ev, level: slog.LevelInfo}))
			if fmt.Sprint(ev.events) != fmt.Sprint(tt.want) {
				t.Errorf("events = %q; want %q", ev.events, tt.want)
			}
		})
	}
}
