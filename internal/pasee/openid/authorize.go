package openid

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// Cookies of the provider, both scoped to <hostname>/oidc/.
const (
	// SSOCookie holds the single sign-on session.
	SSOCookie = "pasee_sso"
	// CSRFCookie binds a login form (and a return from a redirect
	// provider) to the browser that was shown it.
	CSRFCookie = "pasee_login"
)

// Limits on what an authorization request may carry.
const (
	maxState = 2048
	maxNonce = 512
	maxHint  = 256
)

var challengeSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authzError is an error returned to the client's redirect URI (RFC 6749
// 4.1.2.1).
type authzError struct{ code, desc string }

// authorize serves the authorization endpoint (GET, or POST as a form).
func (p *Provider) authorize(c echo.Context) error {
	q := c.Request().URL.Query()
	if c.Request().Method == http.MethodPost {
		if err := c.Request().ParseForm(); err != nil {
			return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		}
		q = c.Request().PostForm
	}
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The "+name+" parameter is repeated.")
		}
	}
	client, ok := p.clients[q.Get("client_id")]
	if !ok {
		p.metrics.authorizations.WithLabelValues("", "error").Inc()
		return p.errorPage(c, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is not registered with this Pasee (unknown client_id).")
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		p.metrics.authorizations.WithLabelValues(client.ID, "error").Inc()
		return p.errorPage(c, http.StatusBadRequest, "Redirect URI not registered",
			fmt.Sprintf("%s asked to be answered at an address it did not register (redirect_uri must equal one of its redirect_uris exactly). Pasee sends nothing there.", client.Name))
	}
	req, aerr := p.parseRequest(client, q)
	if aerr != nil {
		p.metrics.authorizations.WithLabelValues(client.ID, "error").Inc()
		return p.redirectError(c, req, aerr.code, aerr.desc)
	}
	if slices.Contains(strings.Fields(req.Prompt), "login") {
		return p.showLogin(c, req, client, "")
	}
	sso, err := p.currentSSO(c)
	if err != nil {
		return err
	}
	// max_age=0 always asks for a password, as prompt=login does.
	if sso != nil && (req.MaxAge < 0 || p.now().Sub(sso.AuthTime) < time.Duration(req.MaxAge)*time.Second) {
		p.metrics.authorizations.WithLabelValues(client.ID, "code").Inc()
		return p.issueCode(c, req, sso)
	}
	if slices.Contains(strings.Fields(req.Prompt), "none") {
		p.metrics.authorizations.WithLabelValues(client.ID, "login_required").Inc()
		return p.redirectError(c, req, "login_required", "No single sign-on session: the user must log in.")
	}
	return p.showLogin(c, req, client, "")
}

// parseRequest checks the parameters that may be answered at the
// redirect URI; req carries at least RedirectURI and State.
func (p *Provider) parseRequest(client *Client, q url.Values) (Request, *authzError) {
	req := Request{ClientID: client.ID, RedirectURI: q.Get("redirect_uri"), MaxAge: -1}
	for name, vs := range q {
		if len(vs) > 1 {
			return req, &authzError{"invalid_request", "The " + name + " parameter is repeated."}
		}
	}
	req.State = q.Get("state")
	if len(req.State) > maxState {
		req.State = ""
		return req, &authzError{"invalid_request", fmt.Sprintf("state is limited to %d bytes.", maxState)}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return req, &authzError{"invalid_request", "response_type is missing: Pasee supports the code flow (response_type=code)."}
	case rt != "code":
		return req, &authzError{"unsupported_response_type", "Only the authorization code flow (response_type=code) is supported."}
	}
	if q.Has("request") {
		return req, &authzError{"request_not_supported", "Request objects are not supported."}
	}
	if q.Has("request_uri") {
		return req, &authzError{"request_uri_not_supported", "request_uri is not supported."}
	}
	if m := q.Get("response_mode"); m != "" && m != "query" {
		return req, &authzError{"invalid_request", "Only response_mode=query is supported."}
	}
	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		return req, &authzError{"invalid_scope", "The scope must include openid."}
	}
	var granted []string
	for _, s := range scopes {
		if slices.Contains(scopesSupported, s) && !slices.Contains(granted, s) {
			granted = append(granted, s)
		}
	}
	req.Scope = strings.Join(granted, " ")
	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > maxNonce {
		return req, &authzError{"invalid_request", fmt.Sprintf("nonce is limited to %d bytes.", maxNonce)}
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return req, &authzError{"invalid_request", "code_challenge_method without code_challenge."}
	case challenge == "" && client.Public():
		return req, &authzError{"invalid_request", "This client is public: it must use PKCE (code_challenge with code_challenge_method=S256)."}
	case challenge != "" && method != "S256":
		return req, &authzError{"invalid_request", "code_challenge_method must be S256 (plain is not accepted)."}
	case challenge != "" && !challengeSyntax.MatchString(challenge):
		return req, &authzError{"invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier: 43 characters."}
	}
	req.CodeChallenge = challenge
	prompts := strings.Fields(q.Get("prompt"))
	for _, pr := range prompts {
		switch pr {
		case "none", "login", "consent":
			// consent: Pasee asks no consent (its clients are declared by
			// the operator), so there is nothing to prompt for.
		default:
			return req, &authzError{"invalid_request", fmt.Sprintf("prompt=%s is not supported (none, login).", pr)}
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return req, &authzError{"invalid_request", "prompt=none cannot be combined with another value."}
	}
	req.Prompt = strings.Join(prompts, " ")
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, &authzError{"invalid_request", "max_age must be a non-negative number of seconds."}
		}
		req.MaxAge = n
	}
	req.LoginHint = q.Get("login_hint")
	if len(req.LoginHint) > maxHint {
		req.LoginHint = ""
	}
	return req, nil
}

// redirectError sends an error to the client's (checked) redirect URI.
func (p *Provider) redirectError(c echo.Context, req Request, code, desc string) error {
	v := url.Values{"error": {code}, "error_description": {desc}, "iss": {p.issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return c.Redirect(http.StatusFound, withParams(req.RedirectURI, v))
}

// withParams adds params to a redirect URI, which may have a query.
func withParams(base string, params url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + params.Encode()
}

// cookie returns a cookie of the provider.
func (p *Provider) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: p.cookiePath, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second)}
}

// csrfCookie returns the browser's login cookie, setting one if missing.
func (p *Provider) csrfCookie(c echo.Context) string {
	if ck, err := c.Cookie(CSRFCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	v := random(32)
	c.SetCookie(p.cookie(CSRFCookie, v, DefaultRequestTTL*4))
	return v
}

// sameBrowser reports whether the browser carries the login cookie the
// request was shown with.
func sameBrowser(c echo.Context, req Request) bool {
	ck, err := c.Cookie(CSRFCookie)
	return err == nil && req.CSRF != "" && equal(ck.Value, req.CSRF)
}

// showLogin records the request and renders the login page.
func (p *Provider) showLogin(c echo.Context, req Request, client *Client, msg string) error {
	now := p.now()
	req.ID = random(24)
	req.CSRF = p.csrfCookie(c)
	req.CreatedAt, req.ExpiresAt = now, now.Add(DefaultRequestTTL)
	if err := p.store.SaveRequest(c.Request().Context(), req); err != nil {
		return err
	}
	p.metrics.authorizations.WithLabelValues(client.ID, "login_page").Inc()
	return p.loginPage(c, http.StatusOK, req, client, msg)
}

func (p *Provider) loginPage(c echo.Context, status int, req Request, client *Client, msg string) error {
	d := pageData{Title: "Log in to " + client.Name, ClientName: client.Name, Error: msg, Request: req.ID, CSRF: req.CSRF, LoginHint: req.LoginHint}
	for _, prov := range p.passwordIDP {
		d.Providers = append(d.Providers, providerView{Name: prov.Name(), Protocol: prov.Protocol(), Password: true})
	}
	for _, prov := range p.redirectIDP {
		d.Providers = append(d.Providers, providerView{Name: prov.Name(), Protocol: prov.Protocol()})
	}
	return p.render(c, status, d)
}

// currentSSO returns the browser's live single sign-on session, or nil.
// A session whose Pasee session was revoked (logout, ban, reuse) or whose
// user is banned is not live.
func (p *Provider) currentSSO(c echo.Context) (*SSO, error) {
	ck, err := c.Cookie(SSOCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 64 {
		return nil, nil
	}
	ctx := c.Request().Context()
	sso, err := p.store.GetSSO(ctx, hashOf(ck.Value), p.now())
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	banned, live, err := p.svc.Store().CallerStatus(ctx, sso.User, sso.SessionID)
	if errors.Is(err, pasee.ErrUserNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if banned || !live {
		return nil, nil
	}
	return &sso, nil
}

// issueCode sends the browser back to the client with a code.
func (p *Provider) issueCode(c echo.Context, req Request, sso *SSO) error {
	now := p.now()
	code := random(32)
	err := p.store.SaveCode(c.Request().Context(), Code{
		Hash: hashOf(code), ClientID: req.ClientID, RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge,
		Scope: req.Scope, Nonce: req.Nonce, SSO: sso.Hash, IDP: sso.IDP, Subject: sso.Subject, Claims: sso.Claims,
		AuthTime: sso.AuthTime, CreatedAt: now, ExpiresAt: now.Add(p.codeTTL),
	})
	if err != nil {
		return err
	}
	v := url.Values{"code": {code}, "iss": {p.issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return c.Redirect(http.StatusFound, withParams(req.RedirectURI, v))
}

// openSSO starts a single sign-on session for the login that opened the
// Pasee session of pair, and sets its cookie.
func (p *Provider) openSSO(c echo.Context, pair pasee.Pair) (*SSO, error) {
	ctx := c.Request().Context()
	rc, err := p.refresh.Verify(ctx, pair.RefreshToken)
	if err != nil {
		return nil, fmt.Errorf("openid: read the new session: %w", err)
	}
	sid, _ := rc.String("sid")
	sess, err := p.svc.Store().GetSession(ctx, sid)
	if err != nil {
		return nil, fmt.Errorf("openid: read the new session: %w", err)
	}
	value := random(32)
	now := p.now()
	sso := SSO{Hash: hashOf(value), User: sess.User, IDP: sess.IDP, Subject: strings.TrimPrefix(sess.User, sess.IDP+"-"),
		Claims: sess.Claims, SessionID: sess.ID, AuthTime: now.Truncate(time.Second), ExpiresAt: now.Add(p.ssoTTL)}
	if sess.ExpiresAt.Before(sso.ExpiresAt) {
		sso.ExpiresAt = sess.ExpiresAt
	}
	if err := p.store.SaveSSO(ctx, sso); err != nil {
		return nil, err
	}
	if ck, err := c.Cookie(SSOCookie); err == nil && ck.Value != "" && len(ck.Value) <= 64 {
		if prev, err := p.store.GetSSO(ctx, hashOf(ck.Value), now); err == nil && prev.User == sso.User {
			if err := p.store.ReplaceSSO(ctx, prev.Hash, sso.Hash, now); err != nil {
				p.logger.WarnContext(ctx, "openid: cannot replace the previous single sign-on session", "error", err)
			}
		}
	}
	c.SetCookie(p.cookie(SSOCookie, value, sso.ExpiresAt.Sub(now)))
	return &sso, nil
}

// pendingRequest reads the request a login form or a provider's return
// continues, checking it belongs to this browser.
func (p *Provider) pendingRequest(c echo.Context, id string) (Request, *Client, error) {
	req, err := p.store.GetRequest(c.Request().Context(), id, p.now())
	switch {
	case errors.Is(err, ErrUsed):
		return req, nil, p.errorPage(c, http.StatusBadRequest, "Login already completed", "This login page was already used. Go back to the application and start again.")
	case errors.Is(err, ErrExpired):
		return req, nil, p.errorPage(c, http.StatusBadRequest, "Login expired", "This login page is too old. Go back to the application and start again.")
	case errors.Is(err, ErrNotFound):
		return req, nil, p.errorPage(c, http.StatusBadRequest, "Unknown login", "Pasee has no record of this login. Go back to the application and start again.")
	case err != nil:
		return req, nil, err
	}
	if !sameBrowser(c, req) {
		return req, nil, p.errorPage(c, http.StatusForbidden, "Login refused", "This login was started in another browser (or cookies are blocked). Go back to the application and start again.")
	}
	client, ok := p.clients[req.ClientID]
	if !ok {
		return req, nil, p.errorPage(c, http.StatusBadRequest, "Unknown application", "The application of this login is no longer registered.")
	}
	return req, client, nil
}

// complete ends a login: it spends the request, opens the single sign-on
// session and sends the code to the client.
func (p *Provider) complete(c echo.Context, req Request, client *Client, pair pasee.Pair, how string) error {
	ctx := c.Request().Context()
	if _, err := p.store.TakeRequest(ctx, req.ID, p.now()); err != nil {
		if errors.Is(err, ErrUsed) {
			return p.errorPage(c, http.StatusBadRequest, "Login already completed", "This login page was already used. Go back to the application and start again.")
		}
		return err
	}
	sso, err := p.openSSO(c, pair)
	if err != nil {
		return err
	}
	p.metrics.logins.WithLabelValues("ok").Inc()
	p.audit(ctx, sso.User, ActionLogin, sso.User, "client "+client.ID+" via "+how)
	p.logger.InfoContext(ctx, "openid login", "user", sso.User, "client", client.ID, "idp", sso.IDP)
	return p.issueCode(c, req, sso)
}

// login serves the password forms of the login page.
func (p *Provider) login(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The login form could not be read.")
	}
	f := c.Request().PostForm
	req, client, err := p.pendingRequest(c, f.Get("request"))
	if client == nil {
		return err
	}
	if !equal(f.Get("csrf"), req.CSRF) {
		return p.errorPage(c, http.StatusForbidden, "Login refused", "The form does not come from this login page. Go back to the application and start again.")
	}
	idp, login, password := f.Get("idp"), f.Get("login"), f.Get("password")
	if !slices.ContainsFunc(p.passwordIDP, func(pr pasee.Provider) bool { return pr.Name() == idp }) {
		return p.loginPage(c, http.StatusBadRequest, req, client, "Choose one of the identity providers below.")
	}
	if login == "" || password == "" {
		return p.loginPage(c, http.StatusBadRequest, req, client, "Enter your login and password.")
	}
	if len(password) > 1024 || len(login) > 1024 {
		return p.loginPage(c, http.StatusBadRequest, req, client, "This login or password is too long.")
	}
	pair, err := p.svc.Login(c.Request().Context(), idp, login, password, c.RealIP())
	if err != nil {
		return p.loginFailed(c, req, client, idp, err)
	}
	return p.complete(c, req, client, pair, idp)
}

// loginFailed shows the login page again with what went wrong, without
// telling whether the account exists.
func (p *Provider) loginFailed(c echo.Context, req Request, client *Client, idp string, err error) error {
	var locked *pasee.LockedError
	switch {
	case errors.As(err, &locked):
		p.metrics.logins.WithLabelValues("locked").Inc()
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(locked.RetryAfter.Round(time.Second)/time.Second)))
		return p.loginPage(c, http.StatusTooManyRequests, req, client, "Too many failed attempts for this account from this address; retry later.")
	case errors.Is(err, pasee.ErrBanned):
		p.metrics.logins.WithLabelValues("banned").Inc()
		return p.loginPage(c, http.StatusForbidden, req, client, "This user is banned.")
	case errors.Is(err, pasee.ErrProviderRefused):
		p.metrics.logins.WithLabelValues("refused").Inc()
		return p.loginPage(c, http.StatusUnauthorized, req, client, "Wrong login or password.")
	case errors.Is(err, pasee.ErrProviderUnavailable), errors.Is(err, pasee.ErrUnavailable):
		p.metrics.logins.WithLabelValues("error").Inc()
		return p.loginPage(c, http.StatusServiceUnavailable, req, client, idp+" is not responding; retry shortly.")
	case errors.Is(err, pasee.ErrProviderBadAnswer):
		p.metrics.logins.WithLabelValues("error").Inc()
		return p.loginPage(c, http.StatusBadGateway, req, client, idp+" answered something Pasee cannot use; tell the administrator.")
	}
	return err
}

// startRedirect serves the redirect-provider buttons of the login page:
// it runs the browser flow of package flow with <hostname>/oidc/callback
// as the app's redirect URI and the request id as the app's state, bound
// by PKCE to this request.
func (p *Provider) startRedirect(c echo.Context) error {
	q := c.Request().URL.Query()
	req, client, err := p.pendingRequest(c, q.Get("request"))
	if client == nil {
		return err
	}
	idp := q.Get("idp")
	if !slices.ContainsFunc(p.redirectIDP, func(pr pasee.Provider) bool { return pr.Name() == idp }) {
		return p.loginPage(c, http.StatusBadRequest, req, client, "Choose one of the identity providers below.")
	}
	verifier := xoauth2.GenerateVerifier()
	if err := p.store.SetFlowVerifier(c.Request().Context(), req.ID, verifier); err != nil {
		return err
	}
	return p.flow.Begin(c, idp, CallbackURL(p.public), req.ID, xoauth2.S256ChallengeFromVerifier(verifier))
}

// callback is where the browser flow of a redirect provider returns, with
// the flow's one-time code and the request id as state.
func (p *Provider) callback(c echo.Context) error {
	q := c.Request().URL.Query()
	req, client, err := p.pendingRequest(c, q.Get("state"))
	if client == nil {
		return err
	}
	ctx := c.Request().Context()
	if e := q.Get("error"); e != "" {
		if _, err := p.store.TakeRequest(ctx, req.ID, p.now()); err != nil {
			return p.errorPage(c, http.StatusBadRequest, "Login already completed", "This login was already completed.")
		}
		return p.redirectError(c, req, "access_denied", "The user declined at the identity provider.")
	}
	code := q.Get("code")
	if code == "" || req.FlowVerifier == "" || p.flowStore == nil {
		return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The identity provider's answer carries no code.")
	}
	fc, err := p.flowStore.SpendCode(ctx, hashOf(code), p.now())
	if err != nil || !equal(fc.AppChallenge, xoauth2.S256ChallengeFromVerifier(req.FlowVerifier)) {
		return p.errorPage(c, http.StatusBadRequest, "Login failed", "The identity provider's answer is not valid for this login (replayed, expired, or from another login). Go back to the application and start again.")
	}
	pair, err := p.svc.LoginWithIdentity(ctx, fc.IDP, fc.Identity)
	if err != nil {
		if errors.Is(err, pasee.ErrBanned) {
			p.metrics.logins.WithLabelValues("banned").Inc()
			return p.loginPage(c, http.StatusForbidden, req, client, "This user is banned.")
		}
		return err
	}
	return p.complete(c, req, client, pair, fc.IDP)
}
