package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
)

// Bounds of values. They are here, in one place, because the example config
// and the docs quote them.
const (
	minBookingRetention = time.Hour
	maxBookingRetention = 366 * 24 * time.Hour
	minCheckpoint       = time.Minute
	maxCheckpoint       = 24 * time.Hour
	minMaxBytes         = 64 << 20
	minRingSize         = 1 << 20
	maxRingSize         = 1 << 30
	maxTrafficRetention = 366 * 24 * time.Hour
	maxTextLen          = 500
)

// groupPattern is a portable group name (POSIX portable, plus spaces and
// backslashes allowed in Windows local groups).
var groupPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_. \\-]{0,63}$`)

func (c *Config) validate() Problems {
	var ps Problems
	bad := func(key, format string, a ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Version != CurrentVersion && c.Version != 0 {
		bad("version", "this carrel reads version %d, not %d", CurrentVersion, c.Version)
	}

	switch {
	case c.PC.ID == "":
		bad("pc.id", "empty (and the host name is not available); set it, e.g. id = \"pc-01\"")
	case !ValidPCID(c.PC.ID):
		bad("pc.id", "must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit; the host name is used when absent, so set pc.id if the host name does not fit")
	}

	for _, l := range []struct{ key, v string }{
		{"library.name", c.Library.Name}, {"library.responsible", c.Library.Responsible},
		{"library.contact", c.Library.Contact}, {"library.rules", c.Library.Rules},
	} {
		if len(l.v) > maxTextLen {
			bad(l.key, "longer than %d characters", maxTextLen)
		}
	}

	if !isAbs(c.Storage.DataDir) {
		bad("storage.data_dir", "must be an absolute path")
	}

	if r := c.Booking.Retention.D(); r < minBookingRetention || r > maxBookingRetention {
		bad("booking.retention", "must be between 1h and 366d (bookings may not be kept longer than needed)")
	}
	if !strings.HasPrefix(c.Booking.APISocket, "/") {
		bad("booking.api_socket", "must be an absolute path")
	} else if len(c.Booking.APISocket) > 100 {
		bad("booking.api_socket", "longer than 100 bytes, the limit for a Unix socket path")
	}
	if !strings.HasPrefix(strings.ToLower(c.Booking.APIPipe), `\\.\pipe\`) || len(c.Booking.APIPipe) <= len(`\\.\pipe\`) {
		bad("booking.api_pipe", `must be a local named pipe such as \\.\pipe\carrel`)
	}
	if c.Booking.ClientGroup != "" && !groupPattern.MatchString(c.Booking.ClientGroup) {
		bad("booking.client_group", "not a valid group name")
	}

	if d := c.Audit.CheckpointInterval.D(); d < minCheckpoint || d > maxCheckpoint {
		bad("audit.checkpoint_interval", "must be between 1m and 24h")
	}
	c.validateWitnesses(bad)

	if c.Capture.Interface != "" && !ifacePattern.MatchString(c.Capture.Interface) {
		bad("capture.interface", "not a valid interface name")
	}
	seen := map[string]bool{}
	for i, r := range c.Capture.Recipients {
		key := fmt.Sprintf("capture.recipients[%d]", i)
		if _, err := age.ParseX25519Recipient(r); err != nil {
			bad(key, "not an age X25519 public key (age1…): make one with `carrel keygen` or `age-keygen`")
		}
		if seen[r] {
			bad(key, "listed twice")
		}
		seen[r] = true
	}
	switch n := c.Capture.MaxCaseDays; {
	case n > MaxCaseDaysCeiling:
		bad("capture.max_case_days", "may not exceed %d, the ceiling carrel enforces", MaxCaseDaysCeiling)
	case n < 1:
		bad("capture.max_case_days", "must be at least 1")
	}
	if c.Capture.MaxBytes < minMaxBytes {
		bad("capture.max_bytes", "must be at least 64MiB")
	}
	if c.Capture.RingSize < minRingSize || c.Capture.RingSize > maxRingSize || c.Capture.RingSize%(1<<20) != 0 {
		bad("capture.ring_size", "must be a whole number of MiB between 1MiB and 1GiB")
	}
	if r := c.Capture.TrafficRetention.D(); r < time.Hour || r > maxTrafficRetention {
		bad("capture.traffic_retention", "must be between 1h and 366d")
	}
	return ps
}

// ifacePattern is what Linux accepts as an interface name (IFNAMSIZ-1), and
// wide enough for Npcap's \Device\NPF_{GUID} names.
var ifacePattern = regexp.MustCompile(`^[A-Za-z0-9_.:{}\\-]{1,80}$`)

// isAbs reports whether p is absolute on the platform carrel runs on, so a
// Windows path in a Linux config (or the reverse) is caught.
func isAbs(p string) bool { return p != "" && filepath.IsAbs(p) }
