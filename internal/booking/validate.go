package booking

import (
	"fmt"
	"time"
)

// Limits on what a booking client may send. They keep the register small and
// make sure nothing but an opaque reference fits in it.
const (
	MaxRefLen    = 64
	MaxPatronLen = 64
	// MaxPlanned is how far ahead a planned end may lie.
	MaxPlanned = 24 * time.Hour
)

// ValidateRef checks a booking reference: 1 to 64 printable ASCII
// characters from a small set, so that it can be neither a name nor free text.
func ValidateRef(ref string) error {
	if ref == "" {
		return fmt.Errorf("%w: ref is empty", ErrInvalid)
	}
	if len(ref) > MaxRefLen {
		return fmt.Errorf("%w: ref is longer than %d characters", ErrInvalid, MaxRefLen)
	}
	for i := 0; i < len(ref); i++ {
		if !refByte(ref[i]) {
			return fmt.Errorf("%w: ref may contain only letters, digits and . _ : - (found %q at %d)", ErrInvalid, ref[i], i)
		}
	}
	return nil
}

// ValidatePatron checks a patron card number: 1 to 64 printable ASCII
// characters without spaces.
func ValidatePatron(card string) error {
	if card == "" {
		return fmt.Errorf("%w: patron card number is empty", ErrInvalid)
	}
	if len(card) > MaxPatronLen {
		return fmt.Errorf("%w: patron card number is longer than %d characters", ErrInvalid, MaxPatronLen)
	}
	for i := 0; i < len(card); i++ {
		if c := card[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: patron card number may contain only printable ASCII without spaces", ErrInvalid)
		}
	}
	return nil
}

func refByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// Validate checks a start request against the rules, with now as the clock.
func (r StartRequest) Validate(now time.Time) error {
	if r.PC == "" {
		return fmt.Errorf("%w: no PC id", ErrInvalid)
	}
	if err := ValidateRef(r.Ref); err != nil {
		return err
	}
	if r.Patron != "" {
		if err := ValidatePatron(r.Patron); err != nil {
			return err
		}
	}
	if !r.PlannedEnd.IsZero() {
		if !r.PlannedEnd.After(now) {
			return fmt.Errorf("%w: planned end %s is not after now (%s)", ErrInvalid,
				r.PlannedEnd.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if r.PlannedEnd.Sub(now) > MaxPlanned {
			return fmt.Errorf("%w: planned end is more than %s ahead", ErrInvalid, MaxPlanned)
		}
	}
	return nil
}
