package daemon

import (
	"strconv"
	"strings"
	"time"
)

// A boot id names one boot of the PC. The daemon stores it in the booking
// register at start; when the next start finds another, the PC restarted in
// between and every session on it ended, so open bookings are closed as
// interrupted even after a clean stop of the service (systemd and the
// Windows service manager stop the service cleanly at shutdown).
//
// Linux has a real one (/proc/sys/kernel/random/boot_id). Windows has none,
// so its id is the boot time, "boot-time:UNIX-SECONDS", computed from the
// clock and the time since boot; it moves when the clock is stepped, so two
// such ids name the same boot when they lie within bootTimeSlack.
const bootTimePrefix = "boot-time:"

// bootTimeSlack: larger than the clock corrections a PC makes after it
// started (NTP steps of seconds), far smaller than the time between two
// boots with a clean run of carrel in the first.
const bootTimeSlack = 60 * time.Second

func bootTimeID(t time.Time) string {
	return bootTimePrefix + strconv.FormatInt(t.Unix(), 10)
}

// sameBoot reports whether two boot ids name the same boot of the PC.
func sameBoot(a, b string) bool {
	ta, okA := parseBootTime(a)
	tb, okB := parseBootTime(b)
	if okA && okB {
		d := ta.Sub(tb)
		return d.Abs() <= bootTimeSlack
	}
	return a == b
}

func parseBootTime(id string) (time.Time, bool) {
	s, ok := strings.CutPrefix(id, bootTimePrefix)
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}
