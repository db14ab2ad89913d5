// Package api serves Kisee's HTTP API over a kisee.Service.
package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/docs/openapi"
	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Config describes the API.
type Config struct {
	// PublicURL is the base of absolute links (the [server] hostname).
	PublicURL string
	Version   string
	Keys      token.KeyRing
}

// Handler serves Kisee's routes: identity tokens, accounts, keys, health.
type Handler struct {
	svc  *kisee.Service
	cfg  Config
	jwks []byte
}

// Register adds Kisee's routes to s.
func Register(s *web.Server, svc *kisee.Service, cfg Config) error {
	jwks, err := cfg.Keys.JWKS()
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	h := &Handler{svc: svc, cfg: cfg, jwks: jwks}
	s.Route(http.MethodGet, "/", h.home().Handler())
	s.Route(http.MethodGet, "/jwt/", h.describeJWT)
	s.Route(http.MethodPost, "/jwt/", h.createJWT)
	s.Route(http.MethodGet, "/jwt/:jti", h.getJWT)
	s.Route(http.MethodDelete, "/jwt/:jti", h.deleteJWT)
	s.Route(http.MethodGet, "/jwks.json", h.getJWKS)
	h.registerAccountRoutes(s)
	s.Route(http.MethodGet, "/health", s.HealthHandler(cfg.Version, svc.Health))
	s.Route(http.MethodGet, "/metrics", s.Metrics.Handler())
	s.Route(http.MethodGet, "/openapi.yaml", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, "application/yaml", openapi.Kisee())
	})
	return nil
}

func (h *Handler) url(path string) string { return web.URL(h.cfg.PublicURL, path) }

func (h *Handler) home() web.Home {
	json := map[string]struct{}{"application/json": {}}
	return web.Home{
		API: web.HomeAPI{Title: "Identification Provider", Links: map[string]string{
			"author":      "https://github.com/kisee-pasee/suite",
			"describedBy": h.url("/openapi.yaml"),
		}},
		Resources: map[string]web.Resource{
			"jwt":                 {Href: h.url("/jwt/"), Hints: web.Hints{Allow: []string{"GET", "POST"}, Formats: json}},
			"users":               {Href: h.url("/users/"), Hints: web.Hints{Allow: []string{"GET", "POST"}, Formats: json}},
			"password_recoveries": {Href: h.url("/password_recoveries/"), Hints: web.Hints{Allow: []string{"GET", "POST"}, Formats: json}},
			"jwks":                {Href: h.url("/jwks.json"), Hints: web.Hints{Allow: []string{"GET"}, Formats: json}},
			// Tells a Pasee that GET /jwt/{jti} answers whether a token was
			// revoked (the original Kisee had the route but answered 500).
			"token_status": {HrefTmpl: h.url("/jwt/") + "{jti}", HrefVars: map[string]string{"jti": h.url("/openapi.yaml")},
				Hints: web.Hints{Allow: []string{"GET", "DELETE"}, Formats: json}},
		},
	}
}

// credentials is the body of POST /jwt/.
type credentials struct {
	Username *string `json:"username"`
	Login    *string `json:"login"` // compat: the original clients' name for username
	Password *string `json:"password"`
}

func (c credentials) username() string {
	switch {
	case c.Username != nil && *c.Username != "":
		return *c.Username
	case c.Login != nil:
		return *c.Login
	}
	return ""
}

func (h *Handler) createJWT(c echo.Context) error {
	var body credentials
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	username := body.username()
	if username == "" || body.Password == nil || *body.Password == "" {
		return web.NewProblem(http.StatusUnprocessableEntity, "Missing username or password",
			`Send {"username": "...", "password": "..."} ("login" is accepted for "username").`)
	}
	raw, rec, err := h.svc.Login(c.Request().Context(), username, *body.Password, c.RealIP())
	if err != nil {
		return identifyProblem(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/jwt/"+rec.JTI)
	return c.JSON(http.StatusCreated, map[string][]string{"tokens": {raw}})
}

// identifyProblem maps a failed identification to its answer.
func identifyProblem(err error) error {
	var locked *kisee.LockedError
	switch {
	case errors.As(err, &locked):
		return web.TooManyRequests("Too many failed attempts for this account from this address; retry later.", locked.RetryAfter)
	case errors.Is(err, kisee.ErrInvalidCredentials):
		return web.Forbidden("Failed identification", "Wrong username or password.")
	}
	return web.ServiceUnavailable("Identity backend unavailable", "Users cannot be checked right now; retry shortly.").WithCause(err)
}

// jwtDescription is the answer to GET /jwt/: how to create a token.
type jwtDescription struct {
	Actions struct {
		Create struct {
			Fields  []jwtField `json:"fields"`
			Href    string     `json:"href"`
			Method  string     `json:"method"`
			Returns string     `json:"returns"`
		} `json:"create"`
	} `json:"actions"`
	Title string `json:"title"`
}

type jwtField struct {
	Description string `json:"description,omitempty"`
	Name        string `json:"name"`
	Required    bool   `json:"required"`
	Type        string `json:"type"`
}

func (h *Handler) describeJWT(c echo.Context) error {
	d := jwtDescription{Title: "Identity tokens"}
	d.Actions.Create.Method = "POST"
	d.Actions.Create.Href = h.url("/jwt/")
	d.Actions.Create.Fields = []jwtField{
		{Name: "username", Type: "string", Required: true, Description: `the username ("login" is accepted too)`},
		{Name: "password", Type: "string", Required: true},
	}
	d.Actions.Create.Returns = `201 {"tokens": ["<jwt>"]} with Location: /jwt/{jti}`
	return c.JSON(http.StatusOK, d)
}

// principal authenticates the request by bearer identity token or Basic
// credentials.
func (h *Handler) principal(c echo.Context) (kisee.Principal, error) {
	ctx := c.Request().Context()
	authz := c.Request().Header.Get(echo.HeaderAuthorization)
	if user, pass, ok := basicAuth(authz); ok {
		u, err := h.svc.Identify(ctx, user, pass, c.RealIP())
		if err != nil {
			if errors.Is(err, kisee.ErrInvalidCredentials) {
				return kisee.Principal{}, web.NewProblem(http.StatusUnauthorized, "Failed identification", "Wrong username or password.").
					WithHeader("WWW-Authenticate", `Basic realm="kisee", charset="UTF-8"`)
			}
			return kisee.Principal{}, identifyProblem(err)
		}
		return kisee.Principal{Subject: u.ID}, nil
	}
	raw, err := web.BearerToken(c)
	if err != nil {
		return kisee.Principal{}, err
	}
	claims, err := h.svc.Authenticate(ctx, raw)
	if err != nil {
		return kisee.Principal{}, tokenProblem(err)
	}
	return kisee.Principal{Subject: claims.Subject, TokenID: claims.ID}, nil
}

// tokenProblem maps a refused bearer token to its answer: 401, or 503
// when the token could not be checked at all.
func tokenProblem(err error) error {
	switch {
	case errors.Is(err, kisee.ErrUnavailable), errors.Is(err, token.ErrKeySetUnavailable):
		return web.ServiceUnavailable("Service unavailable", "The token cannot be checked right now; retry shortly.").WithCause(err)
	case errors.Is(err, kisee.ErrRevoked):
		return web.Unauthorized("Token revoked", "This token was revoked.")
	}
	return web.Unauthorized("Invalid token", err.Error())
}

func basicAuth(h string) (user, pass string, ok bool) {
	scheme, enc, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// tokenInfo is the body of GET /jwt/{jti}.
type tokenInfo struct {
	JTI     string `json:"jti"`
	Sub     string `json:"sub"`
	Exp     int64  `json:"exp"`
	Revoked bool   `json:"revoked"`
}

func (h *Handler) getJWT(c echo.Context) error {
	p, err := h.principal(c)
	if err != nil {
		return err
	}
	rec, err := h.svc.TokenInfo(c.Request().Context(), p, c.Param("jti"))
	if err != nil {
		return tokenInfoProblem(err)
	}
	return c.JSON(http.StatusOK, tokenInfo{JTI: rec.JTI, Sub: rec.Subject, Exp: rec.ExpiresAt.Unix(), Revoked: rec.Revoked()})
}

func (h *Handler) deleteJWT(c echo.Context) error {
	p, err := h.principal(c)
	if err != nil {
		return err
	}
	if err := h.svc.RevokeToken(c.Request().Context(), p, c.Param("jti")); err != nil {
		return tokenInfoProblem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func tokenInfoProblem(err error) error {
	if errors.Is(err, kisee.ErrTokenNotFound) {
		return web.NotFound("Token not found", "No token of yours has this id.")
	}
	return web.ServiceUnavailable("Service unavailable", "Tokens cannot be read right now; retry shortly.").WithCause(err)
}

func (h *Handler) getJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, h.jwks)
}
