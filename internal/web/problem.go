// Package web is what the Kisee and Pasee HTTP servers share: echo set-up,
// RFC 9457 problem documents, JSON bodies, JSON-Home, request ids,
// structured request logs, Prometheus metrics, CORS, body limits, security
// headers, health, and graceful shutdown.
package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// ProblemContentType is the media type of problem documents (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document. Handlers return it as an error;
// the server's error handler writes it. Title is short and stable (clients
// match on it), Detail explains this occurrence.
type Problem struct {
	Status  int
	Title   string
	Detail  string
	Headers http.Header
	// Extensions are extra members of the document, such as "retry_after".
	Extensions map[string]any
	// Err is the cause, logged but never shown to the client.
	Err error
}

// NewProblem returns a problem document with a status, title and detail.
func NewProblem(status int, title, detail string) *Problem {
	return &Problem{Status: status, Title: title, Detail: detail}
}

// Problemf is NewProblem with a formatted detail.
func Problemf(status int, title, format string, args ...any) *Problem {
	return NewProblem(status, title, fmt.Sprintf(format, args...))
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.Err }

// WithHeader adds a response header to the problem.
func (p *Problem) WithHeader(name, value string) *Problem {
	if p.Headers == nil {
		p.Headers = http.Header{}
	}
	p.Headers.Add(name, value)
	return p
}

// WithCause records err as the cause, for the logs.
func (p *Problem) WithCause(err error) *Problem {
	p.Err = err
	return p
}

// MarshalJSON writes the document with the compatibility members "_type"
// and "_meta" that clients of the original services read.
func (p *Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 6+len(p.Extensions))
	for k, v := range p.Extensions {
		m[k] = v
	}
	m["type"] = "about:blank"
	m["title"] = p.Title
	m["status"] = p.Status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	m["_type"] = "error"
	m["_meta"] = map[string]string{"title": p.Title}
	return json.Marshal(m)
}

// Common problems.

// BadRequest is a 400 with the given title and detail.
func BadRequest(title, detail string) *Problem {
	return NewProblem(http.StatusBadRequest, title, detail)
}

// Forbidden is a 403 with the given title and detail.
func Forbidden(title, detail string) *Problem { return NewProblem(http.StatusForbidden, title, detail) }

// NotFound is a 404 with the given title and detail.
func NotFound(title, detail string) *Problem { return NewProblem(http.StatusNotFound, title, detail) }

// Unauthorized is the 401 every invalid or missing bearer token gets, with
// WWW-Authenticate: Bearer error="invalid_token".
func Unauthorized(title, detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, title, detail).
		WithHeader("WWW-Authenticate", `Bearer error="invalid_token"`)
}

// TooManyRequests is a 429 telling the client when to retry.
func TooManyRequests(detail string, retryAfter time.Duration) *Problem {
	secs := int(retryAfter.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return NewProblem(http.StatusTooManyRequests, "Too many attempts", detail).
		WithHeader("Retry-After", strconv.Itoa(secs))
}

// ServiceUnavailable is a 503 for a dependency that is down.
func ServiceUnavailable(title, detail string) *Problem {
	return NewProblem(http.StatusServiceUnavailable, title, detail)
}

// errorHandler writes every error as a problem document. Errors that are
// not problems become a 500 whose cause is logged with the request id.
func errorHandler(logger *slog.Logger, report func(c echo.Context, err error)) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := AsProblem(err)
		if p.Status >= 500 {
			logger.ErrorContext(c.Request().Context(), "request failed",
				"request_id", RequestID(c), "method", c.Request().Method, "route", c.Path(),
				"status", p.Status, "error", causeOf(err))
			if report != nil {
				report(c, err)
			}
		}
		_ = WriteProblem(c, p)
	}
}

// WriteProblem writes p as the response: its headers, then the document
// (no body for HEAD). Middleware outside a server's error handler, such as
// pkg/verify's, uses it so that every problem document is the same.
func WriteProblem(c echo.Context, p *Problem) error {
	for name, values := range p.Headers {
		for _, v := range values {
			c.Response().Header().Add(name, v)
		}
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(p.Status)
	}
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500}`)
	}
	return c.Blob(p.Status, ProblemContentType, body)
}

func causeOf(err error) string {
	var p *Problem
	if errors.As(err, &p) && p.Err != nil {
		return p.Err.Error()
	}
	return err.Error()
}

// AsProblem converts any handler error into the problem document sent.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return NotFound("Not found", "No resource at this address; GET / lists the resources.")
		case http.StatusMethodNotAllowed:
			return NewProblem(http.StatusMethodNotAllowed, "Method not allowed", "This resource does not accept this method; see the Allow header.")
		case http.StatusRequestEntityTooLarge:
			return BodyTooLarge(0)
		case http.StatusUnsupportedMediaType:
			return NewProblem(he.Code, "Unsupported media type", "Send the body as JSON.")
		}
		if he.Code < 500 {
			return NewProblem(he.Code, http.StatusText(he.Code), fmt.Sprint(he.Message))
		}
	}
	return NewProblem(http.StatusInternalServerError, "Internal error",
		"An unexpected error occurred; it was logged with the request id given in X-Request-Id.").WithCause(err)
}
