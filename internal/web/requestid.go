package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id ctx carries, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// PropagateRequestID returns a transport (over base, or
// http.DefaultTransport when nil) that sends the request id of each
// outgoing request's context as X-Request-Id: a login Pasee forwards to
// Kisee is logged under the same id by both.
func PropagateRequestID(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return requestIDTransport{base}
}

type requestIDTransport struct{ base http.RoundTripper }

func (t requestIDTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if id := RequestIDFrom(req.Context()); id != "" && req.Header.Get(echo.HeaderXRequestID) == "" {
		req = req.Clone(req.Context())
		req.Header.Set(echo.HeaderXRequestID, id)
	}
	return t.base.RoundTrip(req)
}
