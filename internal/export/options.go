package export

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/carrel-lib/carrel/internal/config"
)

// Order is the court order an export answers.
type Order struct {
	Ref       string // the order's reference, as the court wrote it
	Court     string // the court that issued it
	Requester string // who asked for the data (e.g. the police unit)
	Exporter  string // who runs the export (the head librarian)
}

// SHA256 is the order reference's digest: the only form of it the audit
// log and traffic.db's audit entries hold.
func (o Order) SHA256() []byte {
	s := sha256.Sum256([]byte(o.Ref))
	return s[:]
}

// Window is the time window [From, To) an order asks for.
type Window struct{ From, To time.Time }

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.From) && t.Before(w.To) }

// Overlaps reports whether [first, last] shares a moment with the window.
func (w Window) Overlaps(first, last time.Time) bool {
	return first.Before(w.To) && !last.Before(w.From)
}

// Options say what to export and where.
type Options struct {
	Order  Order
	Window Window
	// PCs are the PCs the order names; empty means every PC. This PC's
	// data is exported when it is among them (see Run).
	PCs []string
	// IdentityFile is the head librarian's age identity (carrel keygen or
	// age-keygen). Without it traffic cannot be read, by design.
	IdentityFile string
	// Out is the folder to create. It must not exist; its parent must.
	Out string
	// Config is the loaded carrel config: data folder, PC id, library, cases.
	Config *config.Config
	// DataDir is the path to open files in the data folder with: the
	// judged and held folder (config.DataDir.Path); Config's data_dir when
	// empty.
	DataDir string
	// Version is carrel's version, for Bag-Software-Agent and custody.json.
	Version string
	// Actor names who ran the export in audit entries: an account, never a
	// person's name ("uid:0").
	Actor string
	// Host is the computer's name for custody.json; os.Hostname when empty.
	Host string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Progress, when set, is called with the export's progress now and then
	// and once at the end.
	Progress func(Progress)
	// Step, when set, is called as the export enters each of its Steps, in
	// the export's goroutine, which waits for it; ctx is the export's. The
	// command line leaves it nil; tests use it to interrupt an export at a
	// step they choose.
	Step func(ctx context.Context, step string)
}

// ErrInvalid marks an error in the options: nothing was read or written.
var ErrInvalid = errors.New("invalid export request")

// Validate checks the options without touching any file. Every field but
// PCs, Version, Host, Now and Progress is required.
func (o *Options) Validate() error {
	var missing []string
	for _, r := range []struct{ name, v string }{
		{"order reference", o.Order.Ref}, {"court", o.Order.Court}, {"requester", o.Order.Requester},
		{"exporter", o.Order.Exporter}, {"identity file", o.IdentityFile}, {"output folder", o.Out},
	} {
		if strings.TrimSpace(r.v) == "" {
			missing = append(missing, r.name)
		}
	}
	if o.Window.From.IsZero() {
		missing = append(missing, "window start")
	}
	if o.Window.To.IsZero() {
		missing = append(missing, "window end")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", "))
	}
	for _, r := range []struct{ name, v string }{
		{"order reference", o.Order.Ref}, {"court", o.Order.Court},
		{"requester", o.Order.Requester}, {"exporter", o.Order.Exporter},
	} {
		if err := oneLine(r.v); err != nil {
			return fmt.Errorf("%w: %s %w", ErrInvalid, r.name, err)
		}
	}
	if !o.Window.To.After(o.Window.From) {
		return fmt.Errorf("%w: the window ends (%s) before it starts (%s)", ErrInvalid,
			o.Window.To.UTC().Format(time.RFC3339), o.Window.From.UTC().Format(time.RFC3339))
	}
	for _, pc := range o.PCs {
		if err := oneLine(pc); err != nil || strings.ContainsAny(pc, " ,") || pc == "" {
			return fmt.Errorf("%w: PC id %q is not a single word", ErrInvalid, pc)
		}
	}
	if o.Config == nil {
		return fmt.Errorf("%w: no config", ErrInvalid)
	}
	return nil
}

// oneLine refuses text that would break a bag-info.txt line or hide
// characters from the reader: control characters and line breaks.
func oneLine(s string) error {
	if len(s) > 1024 {
		return errors.New("is longer than 1024 bytes")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("begins or ends with spaces")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }); i >= 0 {
		return fmt.Errorf("holds a control character or line break at byte %d", i)
	}
	return nil
}

// includesPC reports whether this PC's data belongs in the export.
func (o *Options) includesPC(pc string) bool {
	return len(o.PCs) == 0 || slices.Contains(o.PCs, pc)
}
