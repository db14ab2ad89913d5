// Package api serves Pasee's HTTP API over a pasee.Service.
package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/docs/openapi"
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Config describes the API.
type Config struct {
	PublicURL string // the hostname setting: base of absolute links
	Version   string
	Keys      token.KeyRing
	// Health checks the store (and what else /health reports).
	Health func(echo.Context) error
}

// Handler serves Pasee's routes: tokens, groups, users, keys, audit.
type Handler struct {
	svc       *pasee.Service
	cfg       Config
	jwks      []byte
	publicPEM string
	// Flow handles the browser flow of oauth2/oidc providers; nil: none.
	flow RedirectFlow
	// introspectAuth authenticates callers of POST /tokens/introspect;
	// nil: every call is refused (401).
	introspectAuth func(echo.Context) error
}

// RedirectFlow is the front-end login flow (GET /tokens/?idp=...&redirect_uri=...,
// the provider's callback, POST /tokens/?grant=code), served by its own package.
type RedirectFlow interface {
	Start(c echo.Context, idp string) error
	Callback(c echo.Context, idp string) error
	Redeem(c echo.Context) error
}

// Option configures the handler.
type Option func(*Handler)

// WithRedirectFlow plugs in the OAuth2/OIDC browser flow.
func WithRedirectFlow(f RedirectFlow) Option { return func(h *Handler) { h.flow = f } }

// WithIntrospectionAuth makes POST /tokens/introspect answer callers that
// auth accepts (declared clients); without it, nobody.
func WithIntrospectionAuth(auth func(echo.Context) error) Option {
	return func(h *Handler) { h.introspectAuth = auth }
}

// Register adds Pasee's routes to s.
func Register(s *web.Server, svc *pasee.Service, cfg Config, opts ...Option) error {
	jwks, err := cfg.Keys.JWKS()
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	pub, err := cfg.Keys.Current.Public().MarshalPEM()
	if err != nil {
		return err
	}
	h := &Handler{svc: svc, cfg: cfg, jwks: jwks, publicPEM: string(pub)}
	for _, o := range opts {
		o(h)
	}
	s.Route(http.MethodGet, "/", h.home().Handler())
	s.Route(http.MethodGet, "/tokens/", h.getTokens)
	s.Route(http.MethodPost, "/tokens/", h.postTokens)
	s.Route(http.MethodDelete, "/tokens/", h.deleteTokens)
	s.Route(http.MethodPost, "/tokens/introspect", h.introspect)
	s.Route(http.MethodGet, "/public-key/", h.publicKey)
	s.Route(http.MethodGet, "/jwks.json", h.getJWKS)

	s.Route(http.MethodGet, "/groups/", h.listGroups)
	s.Route(http.MethodPost, "/groups/", h.createGroup)
	s.Route(http.MethodGet, "/groups/:group/", h.getGroup)
	s.Route(http.MethodPost, "/groups/:group/", h.addMember)
	s.Route(http.MethodDelete, "/groups/:group/", h.deleteGroup)
	s.Route(http.MethodDelete, "/groups/:group/:username/", h.removeMember)

	s.Route(http.MethodGet, "/users/", h.listUsers)
	s.Route(http.MethodPost, "/users/", h.forward("users"))
	s.Route(http.MethodGet, "/users/:username", h.getUser)
	s.Route(http.MethodPatch, "/users/:username", h.patchUser)
	s.Route(http.MethodDelete, "/users/:username", h.deleteUser)
	s.Route(http.MethodDelete, "/users/:username/sessions", h.revokeSessions)
	s.Route(http.MethodPost, "/password_recoveries/", h.forward("password_recoveries"))
	s.Route(http.MethodPost, "/forgotten-passwords/", h.forward("password_recoveries"))

	s.Route(http.MethodGet, "/audit/", h.audit)
	s.Route(http.MethodGet, "/health", s.HealthHandler(cfg.Version, svc.Store().Ping))
	s.Route(http.MethodGet, "/metrics", s.Metrics.Handler())
	s.Route(http.MethodGet, "/openapi.yaml", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, "application/yaml", openapi.Pasee())
	})
	return nil
}

func (h *Handler) url(path string) string { return web.URL(h.cfg.PublicURL, path) }

func (h *Handler) home() web.Home {
	json := map[string]struct{}{"application/json": {}}
	r := func(path string, allow ...string) web.Resource {
		return web.Resource{Href: h.url(path), Hints: web.Hints{Allow: allow, Formats: json}}
	}
	return web.Home{
		API: web.HomeAPI{Title: "Identification Manager", Links: map[string]string{
			"author":      "https://github.com/kisee-pasee/suite",
			"describedBy": h.url("/openapi.yaml"),
		}},
		Resources: map[string]web.Resource{
			"tokens":              r("/tokens/", "GET", "POST", "DELETE"),
			"groups":              r("/groups/", "GET", "POST"),
			"users":               r("/users/", "GET", "POST"),
			"password_recoveries": r("/password_recoveries/", "POST"),
			"jwks":                r("/jwks.json", "GET"),
			"public_key":          r("/public-key/", "GET"),
			"audit":               r("/audit/", "GET"),
		},
	}
}

// caller authenticates the request's access token.
func (h *Handler) caller(c echo.Context) (string, error) {
	raw, err := web.BearerToken(c)
	if err != nil {
		return "", err
	}
	user, err := h.svc.Caller(c.Request().Context(), raw)
	switch {
	case errors.Is(err, pasee.ErrBanned):
		return "", web.Forbidden("User is banned", "This account is banned from this Pasee.")
	case errors.Is(err, pasee.ErrSessionRevoked):
		return "", web.Unauthorized("Session revoked", "This token's session was closed (logout or revocation). Log in again.")
	case errors.Is(err, pasee.ErrUnavailable):
		return "", problem(err, "")
	case err != nil:
		return "", tokenProblem(err, "Invalid token")
	}
	return user, nil
}

// tokenProblem maps a refused token to 401 (or 503 if it could not be checked).
func tokenProblem(err error, title string) error {
	if errors.Is(err, token.ErrKeySetUnavailable) {
		return web.ServiceUnavailable("Service unavailable", "The token cannot be checked right now; retry shortly.").WithCause(err)
	}
	return web.Unauthorized(title, err.Error())
}

// callerAnd authenticates the request and reads the path parameter name:
// the preamble of every route on one group or user.
func (h *Handler) callerAnd(c echo.Context, name string) (caller, value string, err error) {
	if caller, err = h.caller(c); err != nil {
		return "", "", err
	}
	if value, err = param(c, name); err != nil {
		return "", "", err
	}
	return caller, value, nil
}

// param returns a path parameter, unescaped once.
//
// Echo routes on the escaped path (URL.RawPath) when the request has one,
// and its parameters are then still escaped; otherwise it routes on
// URL.Path, which net/http has unescaped already. Unescaping in both cases
// would decode twice: /users/kisee-bob%2500 (a name holding a literal
// "%00") would read as "kisee-bob\x00", a NUL that PostgreSQL refuses, and
// "a%2541" would name user "aA" rather than "a%41".
//
// A value that is not UTF-8 or holds a control character names nothing
// (no group or user name can hold one): 400, before any store sees it.
func param(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		var err error
		if v, err = url.PathUnescape(v); err != nil {
			return "", web.BadRequest("Invalid path", fmt.Sprintf("The %s in the path is not valid percent-encoding.", name))
		}
	}
	if !plausible(v) {
		return "", web.BadRequest("Invalid path", fmt.Sprintf("The %s in the path is not UTF-8 or holds a control character: no %s does.", name, name))
	}
	return v, nil
}

// plausible reports whether s could be a group or user name at all: valid
// UTF-8 without control characters (NUL above all, which PostgreSQL text
// cannot hold). Values from paths and queries are checked with it before
// they reach a store.
func plausible(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// page reads ?limit= (1 to 200, default 100) and ?after=.
func page(c echo.Context) (after string, limit int, err error) {
	limit = 100
	if v := c.QueryParam("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 200 {
			return "", 0, web.BadRequest("Invalid pagination", "limit must be an integer from 1 to 200.")
		}
		limit = n
	}
	after = c.QueryParam("after")
	if !plausible(after) { // a NUL would reach PostgreSQL, which refuses it in text
		return "", 0, web.BadRequest("Invalid pagination", "after must be a name: UTF-8 without control characters.")
	}
	return after, limit, nil
}

// nextLink is the link to the page after last, or nil on the last page.
func (h *Handler) nextLink(path, last string, n, limit int, extra url.Values) any {
	if n < limit || last == "" {
		return nil
	}
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("after", last)
	q.Set("limit", strconv.Itoa(limit))
	return h.url(path) + "?" + q.Encode()
}

// problem maps the service's and store's errors to problem documents.
// title is used for ErrForbidden refusals, whose wording depends on the route.
func problem(err error, forbiddenTitle string) error {
	var p *web.Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, pasee.ErrForbidden):
		return web.Forbidden(forbiddenTitle, err.Error())
	case errors.Is(err, pasee.ErrInvalidName):
		return web.BadRequest("Invalid name", err.Error())
	case errors.Is(err, pasee.ErrGroupExists):
		return web.NewProblem(http.StatusConflict, "Group already exists", "A group of this name exists already.")
	case errors.Is(err, pasee.ErrParentNotFound):
		return web.NotFound("Parent group does not exist", "Create the parent group first.")
	case errors.Is(err, pasee.ErrGroupNotFound):
		return web.NotFound("Group does not exist", "No group has this name.")
	case errors.Is(err, pasee.ErrAlreadyMember):
		return web.BadRequest("User already in group", "The user is already a member of this group.")
	case errors.Is(err, pasee.ErrNotMember):
		return web.NotFound("User does not exist in group", "The user is not a member of this group.")
	case errors.Is(err, pasee.ErrUserNotFound):
		return web.NotFound("User does not exist", "No user has this name.")
	case errors.Is(err, pasee.ErrUnavailable):
		return web.ServiceUnavailable("Database unavailable", "The store cannot be reached; retry shortly.").WithCause(err)
	}
	return err
}

func (h *Handler) getJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, h.jwks)
}

func (h *Handler) publicKey(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, map[string]string{"public_key": h.publicPEM, "algorithm": string(h.cfg.Keys.Current.Algorithm())})
}

// forward passes self-registration and password recovery to the provider
// with registration = true, unchanged.
func (h *Handler) forward(resource string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var target pasee.Forwarder
		for _, p := range h.svc.Providers() {
			if f, ok := p.(pasee.Forwarder); ok && h.svc.RegistrationProvider() == p.Name() {
				target = f
			}
		}
		if target == nil {
			return web.NotFound("Registration not available", "No identity provider of this Pasee accepts registrations.")
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		// The provider counts registrations per client: pass the client's
		// address (X-Forwarded-For), as for logins.
		ctx := pasee.WithClientAddr(c.Request().Context(), c.RealIP())
		ans, err := target.Forward(ctx, resource, body, c.Request().Header.Get(echo.HeaderContentType))
		if err != nil {
			return providerProblem(err, target.Name())
		}
		for name, values := range ans.Header {
			for _, v := range values {
				c.Response().Header().Add(name, v)
			}
		}
		if len(ans.Body) == 0 {
			return c.NoContent(ans.Status)
		}
		ct := ans.Header.Get(echo.HeaderContentType)
		if ct == "" {
			ct = echo.MIMEApplicationJSON
		}
		return c.Blob(ans.Status, ct, ans.Body)
	}
}
