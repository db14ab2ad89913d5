package pasee

import (
	"context"
	"errors"
)

// Counter is what Metrics count with: a Prometheus counter, a
// web.RollingCounter for the status page, or web.Counters of both.
type Counter interface{ Inc() }

// Metrics are the counters a Service increments as it works; a nil
// counter is skipped.
type Metrics struct {
	// Logins counts sessions opened, whatever the way of logging in
	// (password, provider token, browser flow).
	Logins Counter
	// LoginsFailed counts logins refused because of the user: wrong
	// credentials or provider token, lockout, ban. A provider that is down
	// or answers nonsense is Pasee's failure, not the user's: not counted.
	LoginsFailed Counter
	// Refreshes counts refresh tokens exchanged for a pair (a replay within
	// the grace window included).
	Refreshes Counter
	// ReuseDetected counts spent refresh tokens presented again, each of
	// which revoked its session.
	ReuseDetected Counter
}

func inc(c Counter) {
	if c != nil {
		c.Inc()
	}
}

// countLogin counts the outcome of a login attempt (see Metrics).
func (m Metrics) countLogin(err error) {
	switch {
	case err == nil:
		inc(m.Logins)
	case errors.Is(err, ErrProviderUnavailable), errors.Is(err, ErrProviderBadAnswer), errors.Is(err, ErrUnavailable),
		errors.Is(err, ErrUnknownProvider), errors.Is(err, ErrUnsupportedLogin),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		inc(m.LoginsFailed)
	}
}
