package main

import (
	"fmt"
	"time"
)

// parseTime reads a time given on the command line: RFC 3339
// (2026-11-22T14:00:00+01:00), or local time as "2026-11-22 14:00",
// "2026-11-22T14:00" or a date alone ("2026-11-22", meaning its midnight).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-11-22T14:00:00+01:00, \"2026-11-22 14:00\" (local time) or 2026-11-22", s)
}

// timeFlag is a flag.Value holding an optional time.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

// timeNow is the clock of commands that judge cases; tests may replace it.
var timeNow = time.Now
