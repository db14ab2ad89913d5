package verify

import (
	"errors"
	"net/http"
	"strings"
)

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	optional bool
	skipper  func(*http.Request) bool
	refuse   func(http.ResponseWriter, *http.Request, *Problem)
}

// Optional lets requests without a bearer token through, with no Identity
// in the context (IdentityFrom reports false): for routes that answer
// anonymous callers too. A token that is present must still be valid.
func Optional() MiddlewareOption { return func(c *middlewareConfig) { c.optional = true } }

// WithSkipper lets the requests for which skip returns true through
// unchecked (health checks, public files).
func WithSkipper(skip func(*http.Request) bool) MiddlewareOption {
	return func(c *middlewareConfig) { c.skipper = skip }
}

// WithErrorHandler replaces how a refused request is answered. The default
// is WriteProblem: the problem documents Kisee and Pasee write.
func WithErrorHandler(refuse func(w http.ResponseWriter, r *http.Request, p *Problem)) MiddlewareOption {
	return func(c *middlewareConfig) { c.refuse = refuse }
}

// Middleware verifies the request's "Authorization: Bearer" access token
// with v and puts the caller's Identity in the request's context
// (IdentityFrom). A missing, malformed, expired, wrongly signed or wrongly
// typed token gets 401 with WWW-Authenticate: Bearer error="invalid_token"
// and a problem document; when Pasee's keys cannot be fetched, 503.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	cfg := middlewareConfig{refuse: WriteProblem}
	for _, o := range opts {
		o(&cfg)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.skipper != nil && cfg.skipper(r) {
				next.ServeHTTP(w, r)
				return
			}
			id, p := v.VerifyRequest(r)
			switch {
			case p == nil:
				next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
			case cfg.optional && errors.Is(p, ErrNoToken):
				next.ServeHTTP(w, r)
			default:
				cfg.refuse(w, r, p)
			}
		})
	}
}

// VerifyRequest verifies the request's "Authorization: Bearer" access
// token: the caller's Identity, or the Problem to answer (401; 503 when
// Pasee's keys cannot be fetched). Without a bearer token the Problem's
// Err is ErrNoToken. Middleware is built on it; adapters for other routers
// (echoverify) use it too.
func (v *Verifier) VerifyRequest(r *http.Request) (*Identity, *Problem) {
	raw, ok := bearerToken(r)
	if !ok {
		return nil, invalidToken("Missing token", "Send a token in the header \"Authorization: Bearer <token>\".", ErrNoToken)
	}
	id, err := v.Verify(r.Context(), raw)
	if err != nil {
		return nil, tokenProblem(err)
	}
	return id, nil
}

// bearerToken is the token of an "Authorization: Bearer <token>" header,
// the scheme matched without regard to case.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Authorize decides whether the caller of r, as Middleware put it in r's
// context, may go on: nil when allowed returns true for it; otherwise the
// Problem to answer, 403 with WWW-Authenticate: Bearer
// error="insufficient_scope" and the detail "This resource needs
// membership of <need>.". Without an Identity it is the 401 of a missing
// token, or, when the request carries a token Middleware did not check, a
// 500: the check is wired without Middleware before it, and fails closed.
func Authorize(r *http.Request, allowed func(*Identity) bool, need string) *Problem {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		if _, hasToken := bearerToken(r); !hasToken {
			return invalidToken("Missing token", "Send a token in the header \"Authorization: Bearer <token>\".", ErrNoToken)
		}
		return &Problem{Status: http.StatusInternalServerError, Title: "Internal error",
			Detail: "This service checks groups without verifying tokens first: the verifying middleware is missing before the group check."}
	}
	if !allowed(id) {
		return &Problem{Status: http.StatusForbidden, Title: "Missing group",
			Detail: "This resource needs membership of " + need + ".",
			Header: http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope"`}}}
	}
	return nil
}

// Require answers the Problem of Authorize to callers for which allowed
// returns false; need completes its detail. It goes after Middleware.
func Require(allowed func(*Identity) bool, need string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := Authorize(r, allowed, need); p != nil {
				WriteProblem(w, r, p)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireGroups lets through callers that are members of at least one of
// groups (exact memberships: "staff" is not "staff.x"); others get 403.
func RequireGroups(groups ...string) func(http.Handler) http.Handler {
	return Require(func(id *Identity) bool { return id.AnyOf(groups...) }, "one of the groups "+quoteList(groups))
}

// RequireAllGroups lets through callers that are members of every one of
// groups; others get 403.
func RequireAllGroups(groups ...string) func(http.Handler) http.Handler {
	return Require(func(id *Identity) bool { return id.AllOf(groups...) }, "all the groups "+quoteList(groups))
}

// RequireGroupTree lets through callers that are members of one of
// prefixes or of any group under one of them ("articles" admits
// "articles.writers"); others get 403.
func RequireGroupTree(prefixes ...string) func(http.Handler) http.Handler {
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
