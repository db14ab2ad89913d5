package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// getTokens describes how to log in with each provider; with ?idp= and a
// redirect provider, it starts the browser flow (or completes it, when the
// provider calls back with code and state).
func (h *Handler) getTokens(c echo.Context) error {
	if idp := c.QueryParam("idp"); idp != "" {
		p, ok := h.svc.Provider(idp)
		if !ok {
			return web.BadRequest("Identity provider not implemented", fmt.Sprintf("No identity provider is named %q.", idp))
		}
		if _, redirect := p.(pasee.RedirectLogin); redirect && h.flow != nil {
			// A provider's answer (code or error) is a callback even when its
			// state is empty or missing: a broken callback gets 400, it does
			// not start a new login.
			if (c.QueryParam("code") != "" || c.QueryParam("error") != "") && c.QueryParam("redirect_uri") == "" {
				return h.flow.Callback(c, idp)
			}
			return h.flow.Start(c, idp)
		}
	}
	type how struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
		Method   string `json:"method"`
		Href     string `json:"href"`
		Body     any    `json:"body,omitempty"`
	}
	var providers []how
	for _, p := range h.svc.Providers() {
		e := how{Name: p.Name(), Protocol: p.Protocol(), Href: h.url("/tokens/?idp=" + p.Name())}
		switch p.(type) {
		case pasee.PasswordLogin:
			e.Method, e.Body = "POST", map[string]string{"login": "string", "password": "string"}
		case pasee.RedirectLogin:
			e.Method, e.Href = "GET", e.Href+"&redirect_uri=<your app's registered URL>&state=<opaque>"
		}
		providers = append(providers, e)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"title":              "Tokens",
		"identity_providers": providers,
		"refresh":            map[string]string{"method": "POST", "href": h.url("/tokens/?refresh"), "authorization": "Bearer <refresh token>"},
		"logout":             map[string]string{"method": "DELETE", "href": h.url("/tokens/"), "authorization": "Bearer <refresh token>"},
	})
}

type loginBody struct {
	Login    *string `json:"login"`
	Username *string `json:"username"`
	Password *string `json:"password"`
}

func (h *Handler) postTokens(c echo.Context) error {
	q := c.QueryParams()
	switch {
	case q.Has("refresh"):
		return h.refresh(c)
	case q.Get("grant") == "code":
		if h.flow == nil {
			return web.BadRequest("Grant not supported", "No identity provider uses the browser flow on this Pasee.")
		}
		return h.flow.Redeem(c)
	case q.Get("grant") != "":
		return web.BadRequest("Grant not supported", fmt.Sprintf("Unknown grant %q; the only grant is \"code\".", q.Get("grant")))
	}
	idp := q.Get("idp")
	if idp == "" {
		return web.BadRequest("Identity provider not provided in query string", "Add ?idp=<name>; GET /tokens/ lists the providers.")
	}
	if _, ok := h.svc.Provider(idp); !ok {
		return web.BadRequest("Identity provider not implemented", fmt.Sprintf("No identity provider is named %q.", idp))
	}
	ctx := c.Request().Context()
	var pair pasee.Pair
	var err error
	if web.HasBearer(c) {
		raw, _ := web.BearerToken(c)
		pair, err = h.svc.LoginWithToken(ctx, idp, raw)
	} else {
		var body loginBody
		if err := web.DecodeJSON(c, &body); err != nil {
			return err
		}
		login := ""
		switch {
		case body.Login != nil && *body.Login != "":
			login = *body.Login
		case body.Username != nil:
			login = *body.Username
		}
		if login == "" || body.Password == nil || *body.Password == "" {
			return web.NewProblem(http.StatusUnprocessableEntity, "Missing login or password",
				`Send {"login": "...", "password": "..."} ("username" is accepted for "login"), or a token of the provider as Authorization: Bearer.`)
		}
		pair, err = h.svc.Login(ctx, idp, login, *body.Password, c.RealIP())
	}
	if err != nil {
		return providerProblem(err, idp)
	}
	return writePair(c, pair)
}

// writePair answers a new token pair, never to be cached.
func writePair(c echo.Context, p pasee.Pair) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusCreated, p)
}

// WritePair answers a token pair; for the browser flow's package.
func WritePair(c echo.Context, p pasee.Pair) error { return writePair(c, p) }

// providerProblem maps a failed login at provider name.
func providerProblem(err error, name string) error {
	var locked *pasee.LockedError
	var upstreamLocked *pasee.ProviderLockedError
	switch {
	case errors.As(err, &locked):
		return web.TooManyRequests("Too many failed attempts for this account from this address; retry later.", locked.RetryAfter)
	case errors.As(err, &upstreamLocked):
		return web.TooManyRequests(name+" locked this account for a while; retry later.", upstreamLocked.RetryAfter)
	case errors.Is(err, pasee.ErrUnknownProvider):
		return web.BadRequest("Identity provider not implemented", fmt.Sprintf("No identity provider is named %q.", name))
	case errors.Is(err, pasee.ErrUnsupportedLogin):
		return web.BadRequest("Login method not supported", name+" does not accept this way of logging in; GET /tokens/ says which it accepts.")
	case errors.Is(err, pasee.ErrBanned):
		return web.Forbidden("User is banned", "This account is banned from this Pasee.")
	case errors.Is(err, pasee.ErrProviderRefused):
		return web.Forbidden("Can not authenticate on "+name, name+" did not accept these credentials.")
	case errors.Is(err, pasee.ErrProviderDenied):
		return web.Forbidden("Access denied", "The user declined at "+name+".")
	case errors.Is(err, pasee.ErrProviderUnavailable):
		return web.ServiceUnavailable(name+" not responding", name+" cannot be reached right now; retry shortly.").WithCause(err)
	case errors.Is(err, pasee.ErrProviderBadAnswer):
		return web.NewProblem(http.StatusBadGateway, "Bad answer from "+name, name+" answered something Pasee cannot use.").WithCause(err)
	}
	return problem(err, "Forbidden")
}

// ProviderProblem maps a failed login; for the browser flow's package.
func ProviderProblem(err error, name string) error { return providerProblem(err, name) }

func (h *Handler) refresh(c echo.Context) error {
	raw, err := web.BearerToken(c)
	if err != nil {
		return err
	}
	pair, err := h.svc.Refresh(c.Request().Context(), raw)
	if err != nil {
		return refreshProblem(err)
	}
	return writePair(c, pair)
}

func refreshProblem(err error) error {
	switch {
	case errors.Is(err, token.ErrType):
		return web.Unauthorized("Token is not a refresh token", "Send the refresh token of the pair, not the access token.")
	case errors.Is(err, pasee.ErrReuseDetected):
		return web.Unauthorized("Refresh token reused", "This refresh token was already spent: the whole session is revoked. Log in again.")
	case errors.Is(err, pasee.ErrSessionRevoked):
		return web.Unauthorized("Session revoked", "This session was revoked (logout, ban or reuse). Log in again.")
	case errors.Is(err, pasee.ErrBanned):
		return web.Forbidden("User is banned", "This account is banned from this Pasee.")
	case errors.Is(err, token.ErrKeySetUnavailable):
		return tokenProblem(err, "Invalid token")
	}
	var p *web.Problem
	if errors.As(problem(err, ""), &p) {
		return p
	}
	if isTokenError(err) {
		return web.Unauthorized("Invalid token", err.Error())
	}
	return err
}

func isTokenError(err error) bool {
	for _, e := range []error{token.ErrMalformed, token.ErrAlgorithm, token.ErrHeader, token.ErrType, token.ErrUnknownKey,
		token.ErrSignature, token.ErrExpired, token.ErrNotYetValid, token.ErrIssuer, token.ErrAudience} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (h *Handler) deleteTokens(c echo.Context) error {
	raw, err := web.BearerToken(c)
	if err != nil {
		return err
	}
	if err := h.svc.Logout(c.Request().Context(), raw); err != nil {
		return refreshProblem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) introspect(c echo.Context) error {
	if h.introspectAuth == nil {
		return web.Unauthorized("Client authentication required",
			"Introspection is for declared clients: add a [[clients]] entry with a secret and send its id and secret in Authorization: Basic.").
			WithHeader("WWW-Authenticate", `Basic realm="pasee"`)
	}
	if err := h.introspectAuth(c); err != nil {
		return err
	}
	var body struct {
		Token *string `json:"token"`
	}
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	if body.Token == nil || *body.Token == "" {
		return web.BadRequest("Missing token", `Send {"token": "<jwt>"}.`)
	}
	out, err := h.svc.Introspect(c.Request().Context(), *body.Token)
	if err != nil {
		return refreshProblem(err)
	}
	return c.JSON(http.StatusOK, out)
}

// readBody reads the request body as is, within the body limit.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, web.NewProblem(http.StatusRequestEntityTooLarge, "Request body too large", fmt.Sprintf("Request bodies are limited to %d bytes.", web.DefaultBodyLimit))
		}
		return nil, web.BadRequest("Invalid body", "The request body could not be read.")
	}
	return b, nil
}
