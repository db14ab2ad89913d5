package verify

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// echoKey is where Middleware stores the Identity in an echo.Context.
const echoKey = "verify.identity"

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	optional bool
	skipper  func(echo.Context) bool
	refuse   func(echo.Context, *web.Problem) error
}

// Optional lets requests without a bearer token through, with no Identity
// in the context (FromContext reports false): for routes that answer
// anonymous callers too. A token that is present must still be valid.
func Optional() MiddlewareOption { return func(c *middlewareConfig) { c.optional = true } }

// WithSkipper lets the requests for which skip returns true through
// unchecked (health checks, public files).
func WithSkipper(skip func(echo.Context) bool) MiddlewareOption {
	return func(c *middlewareConfig) { c.skipper = skip }
}

// WithErrorHandler replaces how a refused request is answered. The default
// writes p as Kisee and Pasee write their problem documents; a service with
// its own error format may return p (it is an error) to its echo error
// handler instead.
func WithErrorHandler(refuse func(c echo.Context, p *web.Problem) error) MiddlewareOption {
	return func(c *middlewareConfig) { c.refuse = refuse }
}

// Middleware verifies the request's "Authorization: Bearer" access token
// with v and puts the caller's Identity in the context (FromContext). A
// missing, malformed, expired, wrongly signed or wrongly typed token gets
// 401 with WWW-Authenticate: Bearer error="invalid_token" and a problem
// document; when Pasee's keys cannot be fetched, 503.
func Middleware(v *Verifier, opts ...MiddlewareOption) echo.MiddlewareFunc {
	cfg := middlewareConfig{refuse: WriteProblem}
	for _, o := range opts {
		o(&cfg)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cfg.skipper != nil && cfg.skipper(c) {
				return next(c)
			}
			if cfg.optional && !web.HasBearer(c) {
				return next(c)
			}
			raw, err := web.BearerToken(c)
			if err != nil {
				return cfg.refuse(c, web.AsProblem(err))
			}
			req := c.Request()
			id, err := v.Verify(req.Context(), raw)
			if err != nil {
				return cfg.refuse(c, tokenProblem(err))
			}
			c.Set(echoKey, id)
			c.SetRequest(req.WithContext(WithIdentity(req.Context(), id)))
			return next(c)
		}
	}
}

// tokenProblem is the answer to a refused token, as Pasee gives it for its
// own API: 401, or 503 when the token could not be checked at all.
func tokenProblem(err error) *web.Problem {
	if errors.Is(err, token.ErrKeySetUnavailable) {
		return web.ServiceUnavailable("Service unavailable", "The token cannot be checked right now; retry shortly.").WithCause(err)
	}
	return web.Unauthorized("Invalid token", err.Error())
}

// FromContext returns the caller's Identity put in c by Middleware (or, in
// a chain adapted with HTTP, in the request's context).
func FromContext(c echo.Context) (*Identity, bool) {
	if id, ok := c.Get(echoKey).(*Identity); ok && id != nil {
		return id, true
	}
	return IdentityFrom(c.Request().Context())
}

// Require answers 403 to callers for which allowed returns false; need
// completes the detail "This resource needs membership of <need>.". It
// goes after Middleware: without an Identity in the context it answers 401.
func Require(allowed func(*Identity) bool, need string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id, ok := FromContext(c)
			if !ok {
				if _, err := web.BearerToken(c); err != nil {
					return WriteProblem(c, web.AsProblem(err)) // no token (Optional): 401
				}
				// A token but no identity: Middleware is missing from the
				// chain. Fail closed, loudly.
				return WriteProblem(c, web.NewProblem(http.StatusInternalServerError, "Internal error",
					"This service checks groups without verifying tokens first: verify.Middleware is missing before verify.Require."))
			}
			if !allowed(id) {
				return WriteProblem(c, web.Forbidden("Missing group", "This resource needs membership of "+need+".").
					WithHeader("WWW-Authenticate", `Bearer error="insufficient_scope"`))
			}
			return next(c)
		}
	}
}

// RequireGroups lets through callers that are members of at least one of
// groups (exact memberships: "staff" is not "staff.x"); others get 403.
func RequireGroups(groups ...string) echo.MiddlewareFunc {
	return Require(func(id *Identity) bool { return id.AnyOf(groups...) }, "one of the groups "+quoteList(groups))
}

// RequireAllGroups lets through callers that are members of every one of
// groups; others get 403.
func RequireAllGroups(groups ...string) echo.MiddlewareFunc {
	return Require(func(id *Identity) bool { return id.AllOf(groups...) }, "all the groups "+quoteList(groups))
}

// RequireGroupTree lets through callers that are members of one of
// prefixes or of any group under one of them ("articles" admits
// "articles.writers"); others get 403.
func RequireGroupTree(prefixes ...string) echo.MiddlewareFunc {
	return Require(func(id *Identity) bool {
		for _, p := range prefixes {
			if id.InGroupTree(p) {
				return true
			}
		}
		return false
	}, "a group in the tree of "+quoteList(prefixes))
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return strings.Join(q, ", ")
}

// WriteProblem writes p as Kisee and Pasee write their problem documents:
// its headers, Content-Type application/problem+json, and the body with
// the "_type"/"_meta" members old clients read (no body for HEAD).
func WriteProblem(c echo.Context, p *web.Problem) error {
	// Outside a web.Server the security headers are not set: no-store at least.
	c.Response().Header().Set("Cache-Control", "no-store")
	return web.WriteProblem(c, p)
}

// HTTP adapts an echo middleware of this package (Middleware, Require...)
// to net/http, for services that do not use echo:
//
//	mux.Handle("/admin", verify.HTTP(verify.Middleware(v))(verify.HTTP(verify.RequireGroups("staff"))(admin)))
//
// The Identity travels in the request's context: IdentityFrom(r.Context()).
func HTTP(mw echo.MiddlewareFunc) func(http.Handler) http.Handler {
	e := echo.New() // only its context pool is used
	return func(next http.Handler) http.Handler {
		h := mw(func(c echo.Context) error {
			next.ServeHTTP(c.Response(), c.Request())
			return nil
		})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := e.AcquireContext()
			c.Reset(r, w)
			defer e.ReleaseContext(c)
			// The middlewares answer refusals themselves; an error here can
			// only be a failed write to a gone client.
			_ = h(c)
		})
	}
}
