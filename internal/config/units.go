package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of time written as a Go duration ("90m", "1h30m") or
// with a day or week suffix ("28d", "2w"), which Go durations lack and
// retention periods need.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses the textual form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the shortest form that ParseDuration reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string {
	v := time.Duration(d)
	day := 24 * time.Hour
	if v > 0 && v%day == 0 {
		return strconv.FormatInt(int64(v/day), 10) + "d"
	}
	return v.String()
}

// ErrDurationRange is returned (wrapped) by ParseDuration for a duration
// too long for a time.Duration (about 292 years).
var ErrDurationRange = errors.New("too long")

// durationDigits is the form of a Go duration, so that an overflow can be
// told from a typo (time.ParseDuration says "invalid duration" for both).
var durationDigits = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// ParseDuration reads "28d", "2w", "36h", "15m" and every other Go duration.
// A number too large for a time.Duration (about 106,751 days) is an error,
// never a value that wrapped around: "640512d" must not become 1h16m.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		n, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if errors.Is(err, strconv.ErrRange) || err == nil && v > uint64(math.MaxInt64/u.unit) {
			return 0, fmt.Errorf("invalid duration %q: %w (at most %d%s)", s, ErrDurationRange, math.MaxInt64/u.unit, u.suffix)
		}
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want a whole number before %q", s, u.suffix)
		}
		return time.Duration(v) * u.unit, nil
	}
	// time.ParseDuration refuses values that overflow int64 itself.
	v, err := time.ParseDuration(s)
	if err != nil && strings.Contains(err.Error(), "invalid duration") && durationDigits.MatchString(s) {
		return 0, fmt.Errorf("invalid duration %q: %w", s, ErrDurationRange)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use for example 28d, 36h or 15m", s)
	}
	return v, nil
}

// Size is a number of bytes written as an integer or with a binary unit:
// "16MiB", "2 GiB". Decimal units ("MB") are refused: a quota that silently
// means 5 % less than its writer thought is a bug.
type Size int64

// UnmarshalText parses the textual form.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = Size(v)
	return nil
}

// MarshalText writes the size with the largest exact binary unit.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

func (z Size) String() string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := int64(z), 0
	for v != 0 && v%1024 == 0 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatInt(v, 10) + units[i]
}

// MaxSize is the largest size ParseSize accepts: 4 EiB, far above any disk,
// and far enough below the top of int64 that sums of sizes cannot wrap.
const MaxSize = 1 << 62

// ParseSize reads "8388608", "8MiB", "8 MiB", "2GiB", "512KiB".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) || err == nil && v > MaxSize/uint64(mult) {
		return 0, fmt.Errorf("invalid size: too large (at most %s)", Size(MaxSize))
	}
	if err != nil {
		return 0, fmt.Errorf("invalid size: want a whole number of bytes or one with KiB, MiB, GiB or TiB, such as 16MiB")
	}
	return int64(v) * mult, nil
}
