// Package echoverify puts pkg/verify's middlewares on echo: Middleware
// verifies Pasee access tokens, RequireGroups and its siblings check the
// caller's groups, FromContext gives handlers the caller. The answers are
// those of pkg/verify, the problem documents Kisee and Pasee write.
//
// It is a package of its own so that services on plain net/http, which
// import pkg/verify only, do not inherit echo.
package echoverify

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/pkg/verify"
)

// Option configures Middleware.
type Option func(*config)

type config struct {
	optional bool
	skipper  func(echo.Context) bool
	refuse   func(echo.Context, *verify.Problem) error
}

// Optional lets requests without a bearer token through, with no Identity
// in the context (FromContext reports false): for routes that answer
// anonymous callers too. A token that is present must still be valid.
func Optional() Option { return func(c *config) { c.optional = true } }

// WithSkipper lets the requests for which skip returns true through
// unchecked (health checks, public files).
func WithSkipper(skip func(echo.Context) bool) Option {
	return func(c *config) { c.skipper = skip }
}

// WithErrorHandler replaces how a refused request is answered. The default
// writes p with verify.WriteProblem; a service with its own error format
// may return p (it is an error) to its echo error handler instead.
func WithErrorHandler(refuse func(c echo.Context, p *verify.Problem) error) Option {
	return func(c *config) { c.refuse = refuse }
}

// Middleware verifies the request's "Authorization: Bearer" access token
// with v and puts the caller's Identity in the request's context
// (FromContext). Refusals are verify.Middleware's: 401 with
// WWW-Authenticate: Bearer error="invalid_token", 503 when Pasee's keys
// cannot be fetched.
func Middleware(v *verify.Verifier, opts ...Option) echo.MiddlewareFunc {
	cfg := config{refuse: writeProblem}
	for _, o := range opts {
		o(&cfg)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cfg.skipper != nil && cfg.skipper(c) {
				return next(c)
			}
			req := c.Request()
			id, p := v.VerifyRequest(req)
			switch {
			case p == nil:
				c.SetRequest(req.WithContext(verify.WithIdentity(req.Context(), id)))
			case cfg.optional && errors.Is(p, verify.ErrNoToken):
			default:
				return cfg.refuse(c, p)
			}
			return next(c)
		}
	}
}

// FromContext returns the caller's Identity put in c by Middleware.
func FromContext(c echo.Context) (*verify.Identity, bool) {
	return verify.IdentityFrom(c.Request().Context())
}

// Require answers 403 to callers for which allowed returns false (see
// verify.Authorize); need completes the detail "This resource needs
// membership of <need>.". It goes after Middleware.
func Require(allowed func(*verify.Identity) bool, need string) echo.MiddlewareFunc {
	return echo.WrapMiddleware(verify.Require(allowed, need))
}

// RequireGroups lets through callers that are members of at least one of
// groups (exact memberships: "staff" is not "staff.x"); others get 403.
func RequireGroups(groups ...string) echo.MiddlewareFunc {
	return echo.WrapMiddleware(verify.RequireGroups(groups...))
}

// RequireAllGroups lets through callers that are members of every one of
// groups; others get 403.
func RequireAllGroups(groups ...string) echo.MiddlewareFunc {
	return echo.WrapMiddleware(verify.RequireAllGroups(groups...))
}

// RequireGroupTree lets through callers that are members of one of
// prefixes or of any group under one of them ("articles" admits
// "articles.writers"); others get 403.
func RequireGroupTree(prefixes ...string) echo.MiddlewareFunc {
	return echo.WrapMiddleware(verify.RequireGroupTree(prefixes...))
}

func writeProblem(c echo.Context, p *verify.Problem) error {
	verify.WriteProblem(c.Response(), c.Request(), p)
	return nil
}
