package daemon

import (
	"context"
	"log/slog"

	"github.com/carrel-lib/carrel/internal/config"
)

// folderNamer writes the data folder's real name where a message or an
// attribute holds the path files are opened through (/proc/self/fd/N), so
// that the service log names folders an administrator can find.
type folderNamer struct {
	slog.Handler
	data *config.DataDir
}

func (h folderNamer) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.data.Rename(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h folderNamer) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.data.Rename(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.Any(a.Key, h.data.Named(err))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h folderNamer) WithAttrs(attrs []slog.Attr) slog.Handler {
	named := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		named[i] = h.attr(a)
	}
	return folderNamer{Handler: h.Handler.WithAttrs(named), data: h.data}
}

func (h folderNamer) WithGroup(name string) slog.Handler {
	return folderNamer{Handler: h.Handler.WithGroup(name), data: h.data}
}
