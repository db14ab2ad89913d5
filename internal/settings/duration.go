package settings

import (
	"fmt"
	"slices"
	"time"
)

// Duration is a time.Duration written as a string: "15m", "720h", "5s".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (examples: \"90s\", \"15m\", \"720h\")", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// IsSet reports whether key is written in the file or was set by an
// environment variable.
func (s *Source) IsSet(key string) bool {
	if s.Has(key) {
		return true
	}
	return slices.ContainsFunc(s.env.applied, func(o Override) bool { return o.Key == key })
}

// Positive refuses a duration at key that is set to zero: a lifetime of
// "0s" would issue tokens that are expired when issued. Negative durations
// never decode.
func (s *Source) Positive(key string, d Duration) error {
	if d <= 0 && s.IsSet(key) {
		return s.Errorf(key, "must be more than zero, such as \"15m\" (got %q)", time.Duration(d).String())
	}
	return nil
}
