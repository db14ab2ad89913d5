package web

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/labstack/echo/v4"
)

// Sentry reports panics and 5xx errors to Sentry, as the original services
// did when SENTRY_DSN was set. Events carry the request id, route, method
// and the error — never the request's headers, body or query, and any
// token-like string in the error is masked.
type Sentry struct {
	hub *sentry.Hub
}

// jwtLike matches a compact JWS (three base64url parts), to mask it.
var jwtLike = regexp.MustCompile(`[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)

// NewSentry returns a reporter for dsn, or nil when dsn is empty.
func NewSentry(dsn, release, service string) (*Sentry, error) {
	if dsn == "" {
		return nil, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:            dsn,
		Release:        release,
		ServerName:     service,
		SendDefaultPII: false,
		// Errors go straight to the transport's queue, which Flush waits
		// for. Through the telemetry buffer (sentry-go's default since
		// 0.4x) an event its scheduler had taken but not yet handed to
		// the transport escaped Flush: at shutdown it could be lost (and
		// a test saw it, 1 run in 25).
		DisableTelemetryBuffer: true,
		BeforeSend: func(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
			e.Request = nil // headers and bodies carry passwords and tokens
			e.User = sentry.User{}
			e.Message = jwtLike.ReplaceAllString(e.Message, "[token]")
			for i := range e.Exception {
				e.Exception[i].Value = jwtLike.ReplaceAllString(e.Exception[i].Value, "[token]")
			}
			return e
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sentry: %w", err)
	}
	return &Sentry{hub: sentry.NewHub(client, sentry.NewScope())}, nil
}

// Report sends err, which failed the request of c with a 5xx.
func (s *Sentry) Report(c echo.Context, err error) {
	var p *Problem
	cause := err
	if errors.As(err, &p) && p.Err != nil {
		cause = p.Err
	}
	hub := s.hub.Clone()
	hub.WithScope(func(scope *sentry.Scope) {
		scope.SetTag("request_id", RequestID(c))
		scope.SetTag("route", c.Path())
		scope.SetTag("method", c.Request().Method)
		hub.CaptureException(cause)
	})
}

// Flush waits up to timeout for queued events to be sent.
func (s *Sentry) Flush(timeout time.Duration) { s.hub.Flush(timeout) }
