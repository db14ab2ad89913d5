package openid

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// oauthError is an RFC 6749 5.2 error answer.
type oauthError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description,omitempty"`
	err    error  // an unexpected failure: answered as a problem document
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Desc }

func invalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Desc: desc}
}
func invalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_grant", Desc: desc}
}
func invalidClient(desc string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Desc: desc}
}

// writeOAuth writes v (or the oauthError err) as RFC 6749 JSON.
func writeOAuth(c echo.Context, status int, v any) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e, ok := v.(*oauthError); ok {
		status = e.status
		if status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", `Basic realm="pasee"`)
		}
	}
	return c.JSON(status, v)
}

// readForm reads an application/x-www-form-urlencoded body, refusing
// repeated parameters (RFC 6749 3.2).
func readForm(c echo.Context) (url.Values, *oauthError) {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, invalidRequest("The body must be application/x-www-form-urlencoded.")
	}
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("The body could not be read as a form.")
	}
	for name, vs := range r.PostForm {
		if len(vs) > 1 {
			return nil, invalidRequest("The " + name + " parameter is repeated.")
		}
	}
	return r.PostForm, nil
}

// authenticateClient finds the client of a request: client_secret_basic,
// client_secret_post, or a public client naming itself (none). The
// secret is compared in constant time; an unknown client costs the same
// comparison as a known one.
func (p *Provider) authenticateClient(c echo.Context, form url.Values, allowPublic bool) (*Client, *oauthError) {
	id, secret, basic := c.Request().BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("The Basic credentials are not form-encoded (RFC 6749 2.3.1).")
		}
		if form.Has("client_secret") {
			return nil, invalidRequest("Use one client authentication method, not two.")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return nil, invalidClient("client_id differs from the Basic credentials.")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, invalidClient("Client authentication is required (client_secret_basic or client_secret_post).")
	}
	client, known := p.clients[id]
	want := "\x00no client\x00"
	if known {
		want = client.Secret
	}
	switch {
	case known && client.Public():
		if secret != "" {
			return nil, invalidClient("This client is public and has no secret.")
		}
		if !allowPublic {
			return nil, invalidClient("Public clients cannot use this endpoint.")
		}
		return client, nil
	case !equal(secret, want) || !known:
		return nil, invalidClient("Unknown client or wrong secret.")
	}
	return client, nil
}

// tokenResponse is the token endpoint's answer (RFC 6749 5.1, OIDC 3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// token serves the token endpoint.
func (p *Provider) token(c echo.Context) error {
	form, oerr := readForm(c)
	grant := ""
	if oerr == nil {
		grant = form.Get("grant_type")
	}
	var resp *tokenResponse
	if oerr == nil {
		var client *Client
		client, oerr = p.authenticateClient(c, form, true)
		if oerr == nil {
			switch grant {
			case "authorization_code":
				resp, oerr = p.codeGrant(c, client, form)
			case "refresh_token":
				resp, oerr = p.refreshGrant(c, client, form)
			case "":
				oerr = invalidRequest("grant_type is missing.")
			default:
				oerr = &oauthError{status: http.StatusBadRequest, Code: "unsupported_grant_type", Desc: "Pasee supports authorization_code and refresh_token."}
			}
		}
	}
	if grant != "authorization_code" && grant != "refresh_token" {
		grant = "other"
	}
	if oerr != nil {
		p.metrics.tokens.WithLabelValues(grant, "error").Inc()
		if oerr.err != nil {
			return oerr.err
		}
		return writeOAuth(c, 0, oerr)
	}
	p.metrics.tokens.WithLabelValues(grant, "ok").Inc()
	return writeOAuth(c, http.StatusOK, resp)
}

// serverError turns an unexpected failure into a 500 (or 503) problem.
func serverError(err error) *oauthError {
	return &oauthError{err: err, Code: "server_error"}
}

func (p *Provider) codeGrant(c echo.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	ctx := c.Request().Context()
	raw := form.Get("code")
	if raw == "" {
		return nil, invalidRequest("code is missing.")
	}
	now := p.now()
	code, err := p.store.SpendCode(ctx, hashOf(raw), now)
	switch {
	case errors.Is(err, ErrUsed):
		p.revokeReplayed(ctx, code)
		return nil, invalidGrant("This code was already used; the tokens it gave are revoked.")
	case errors.Is(err, ErrExpired):
		return nil, invalidGrant("This code has expired.")
	case errors.Is(err, ErrNotFound):
		return nil, invalidGrant("Unknown code.")
	case err != nil:
		return nil, serverError(err)
	}
	if code.ClientID != client.ID {
		return nil, invalidGrant("This code was issued to another client.")
	}
	if form.Get("redirect_uri") != code.RedirectURI {
		return nil, invalidGrant("redirect_uri differs from the authorization request's.")
	}
	verifier := form.Get("code_verifier")
	switch {
	case code.CodeChallenge == "" && verifier != "":
		return nil, invalidGrant("code_verifier sent but the authorization request had no code_challenge.")
	case code.CodeChallenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier is missing.")
	case code.CodeChallenge != "" && !equal(xoauth2.S256ChallengeFromVerifier(verifier), code.CodeChallenge):
		return nil, invalidGrant("code_verifier does not match the code_challenge.")
	}
	claims := map[string]any{}
	for k, v := range code.Claims {
		claims[k] = v
	}
	claims["client_id"] = client.ID
	claims["scope"] = code.Scope
	pair, err := p.svc.LoginWithIdentity(ctx, code.IDP, pasee.Identity{Subject: code.Subject, Claims: claims})
	if errors.Is(err, pasee.ErrBanned) {
		return nil, invalidGrant("The user is banned.")
	}
	if err != nil {
		return nil, serverError(err)
	}
	if rc, err := p.refresh.Verify(ctx, pair.RefreshToken); err == nil {
		sid, _ := rc.String("sid")
		err := p.store.CodeOpened(ctx, code, sid)
		if errors.Is(err, ErrUsed) {
			// Replayed while this redemption ran: neither gets tokens.
			code.SessionID = sid
			p.revokeReplayed(ctx, code)
			return nil, invalidGrant("This code was already used; the tokens it gave are revoked.")
		}
		if err != nil {
			p.logger.WarnContext(ctx, "openid: cannot record the session of a code", "error", err)
		}
	}
	resp, err := p.respond(client, pair, code.Scope, code.Nonce, code.AuthTime)
	if err != nil {
		return nil, serverError(err)
	}
	user := pasee.UserName(code.IDP, code.Subject)
	p.audit(ctx, user, ActionIssue, user, "client "+client.ID+" scope "+code.Scope)
	return resp, nil
}

// revokeReplayed revokes the session a replayed code opened (RFC 6749
// 4.1.2: a code used twice may have been stolen).
func (p *Provider) revokeReplayed(ctx context.Context, code Code) {
	p.logger.WarnContext(ctx, "openid: replayed authorization code", "client", code.ClientID, "user", pasee.UserName(code.IDP, code.Subject))
	if code.SessionID == "" {
		// The first redemption has not recorded its session yet: mark the
		// code, so that it revokes the session itself.
		if _, err := p.store.MarkReplayed(ctx, code.Hash); err != nil {
			p.logger.ErrorContext(ctx, "openid: cannot mark a replayed code", "error", err)
		}
		return
	}
	err := p.svc.Store().RevokeSession(ctx, "pasee (replayed authorization code)", code.SessionID, p.now())
	if err != nil && !errors.Is(err, pasee.ErrNotFound) {
		p.logger.ErrorContext(ctx, "openid: cannot revoke the session of a replayed code", "error", err)
	}
}

func (p *Provider) refreshGrant(c echo.Context, client *Client, form url.Values) (*tokenResponse, *oauthError) {
	ctx := c.Request().Context()
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, invalidRequest("refresh_token is missing.")
	}
	var scope string
	var refused *oauthError
	pair, err := p.svc.RefreshIf(ctx, raw, func(rc *token.Claims) error {
		if owner, _ := rc.String("client_id"); owner != client.ID {
			refused = invalidGrant("This refresh token was issued to another client.")
			return refused
		}
		scope, _ = rc.String("scope")
		if asked := form.Get("scope"); asked != "" {
			for _, s := range strings.Fields(asked) {
				if !slices.Contains(strings.Fields(scope), s) {
					refused = &oauthError{status: http.StatusBadRequest, Code: "invalid_scope", Desc: "A refresh cannot widen the scope."}
					return refused
				}
			}
		}
		return nil
	})
	switch {
	case refused != nil:
		return nil, refused
	case errors.Is(err, pasee.ErrReuseDetected):
		return nil, invalidGrant("This refresh token was already used: the session is revoked.")
	case errors.Is(err, pasee.ErrSessionRevoked), errors.Is(err, pasee.ErrBanned):
		return nil, invalidGrant("The session is revoked or the user is banned.")
	case errors.Is(err, token.ErrKeySetUnavailable):
		return nil, serverError(err)
	case err != nil && isTokenError(err):
		return nil, invalidGrant("The refresh token is not valid.")
	case err != nil:
		return nil, serverError(err)
	}
	resp, err := p.respond(client, pair, scope, "", time.Time{})
	if err != nil {
		return nil, serverError(err)
	}
	return resp, nil
}

// respond builds the token answer for pair: the access token as Pasee
// issued it, an ID token, and the refresh token with offline_access.
func (p *Provider) respond(client *Client, pair pasee.Pair, scope, nonce string, authTime time.Time) (*tokenResponse, error) {
	at := pair.Access
	if at == nil {
		return nil, errors.New("openid: the pair carries no access claims")
	}
	scopes := strings.Fields(scope)
	id := p.userClaims(at, scopes)
	id.Issuer, id.Audience = p.issuer, []string{client.ID}
	id.IssuedAt = time.Unix(at.IssuedAt.Unix(), 0)
	id.ExpiresAt = time.Unix(at.ExpiresAt.Unix(), 0)
	if nonce != "" {
		id.Set("nonce", nonce)
	}
	if !authTime.IsZero() {
		id.Set("auth_time", authTime.Unix())
	}
	signer := p.signer
	if client.RS256 {
		signer = p.rsaSigner
	}
	id.Set("at_hash", halfHash(signer.Key().Algorithm(), pair.AccessToken))
	if sid, ok := at.String("sid"); ok {
		id.Set("sid", sid)
	}
	idToken, err := signer.Sign(token.TypeJWT, id)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{AccessToken: pair.AccessToken, TokenType: "Bearer", ExpiresIn: pair.ExpiresIn, IDToken: idToken, Scope: scope}
	if slices.Contains(scopes, "offline_access") {
		resp.RefreshToken = pair.RefreshToken
	}
	return resp, nil
}

// userClaims are the claims about the user that scopes release, from an
// access token: sub, groups (scope groups), and the provider's
// whitelisted claims named by email and profile.
func (p *Provider) userClaims(at *token.Claims, scopes []string) token.Claims {
	out := token.Claims{Subject: at.Subject}
	if slices.Contains(scopes, "groups") {
		groups, _ := at.Strings("groups")
		if groups == nil {
			groups = []string{}
		}
		out.Set("groups", groups)
	}
	release := func(names []string) {
		for _, n := range names {
			if v, ok := at.Extra[n]; ok {
				out.Set(n, v)
			}
		}
	}
	if slices.Contains(scopes, "email") {
		release(emailClaims)
	}
	if slices.Contains(scopes, "profile") {
		release(profileClaims)
	}
	return out
}

// halfHash is at_hash (OIDC Core 3.1.3.6): the left half of the hash of
// the access token, with the hash of the ID token's algorithm.
func halfHash(alg token.Algorithm, accessToken string) string {
	var h hash.Hash
	switch alg {
	case token.ES384:
		h = sha512.New384()
	case token.EdDSA:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// userinfo serves the UserInfo endpoint (GET or POST) with the access
// token: the claims its scopes release.
func (p *Provider) userinfo(c echo.Context) error {
	raw, err := web.BearerToken(c)
	if err != nil && c.Request().Method == http.MethodPost {
		if perr := c.Request().ParseForm(); perr == nil && c.Request().PostForm.Get("access_token") != "" {
			raw, err = c.Request().PostForm.Get("access_token"), nil
		}
	}
	if err != nil {
		return bearerError(c, "invalid_request", "Send the access token in Authorization: Bearer.")
	}
	ctx := c.Request().Context()
	if _, err := p.svc.Caller(ctx, raw); err != nil {
		return bearerError(c, "invalid_token", "The access token is not valid, its session was revoked, or its user is banned.")
	}
	at, err := p.access.Verify(ctx, raw)
	if err != nil {
		return bearerError(c, "invalid_token", "The access token is not valid.")
	}
	scope, _ := at.String("scope")
	if _, ok := at.String("client_id"); !ok || !slices.Contains(strings.Fields(scope), "openid") {
		return bearerError(c, "insufficient_scope", "This access token was not issued for OpenID Connect (scope openid).")
	}
	out := p.userClaims(at, strings.Fields(scope))
	groups, err := p.svc.Store().UserGroups(ctx, at.Subject)
	if err != nil {
		return err
	}
	if out.Has("groups") {
		if groups == nil {
			groups = []string{}
		}
		out.Set("groups", groups)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// bearerError answers RFC 6750 3.1.
func bearerError(c echo.Context, code, desc string) error {
	status := http.StatusUnauthorized
	switch code {
	case "invalid_request":
		status = http.StatusBadRequest
	case "insufficient_scope":
		status = http.StatusForbidden
	}
	c.Response().Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, map[string]string{"error": code, "error_description": desc})
}

// revoke serves RFC 7009 revocation: a client revokes its own refresh or
// access token, which ends the session they belong to.
func (p *Provider) revoke(c echo.Context) error {
	form, oerr := readForm(c)
	if oerr != nil {
		return writeOAuth(c, 0, oerr)
	}
	client, oerr := p.authenticateClient(c, form, true)
	if oerr != nil {
		return writeOAuth(c, 0, oerr)
	}
	raw := form.Get("token")
	if raw == "" {
		return writeOAuth(c, 0, invalidRequest("token is missing."))
	}
	ctx := c.Request().Context()
	var claims *token.Claims
	if rc, err := p.refresh.Verify(ctx, raw); err == nil {
		claims = rc
	} else if ac, err := p.access.Verify(ctx, raw); err == nil {
		claims = ac
	}
	if claims == nil {
		// RFC 7009 2.2: an invalid token is no error.
		return c.NoContent(http.StatusOK)
	}
	if owner, _ := claims.String("client_id"); owner != client.ID {
		return writeOAuth(c, 0, &oauthError{status: http.StatusBadRequest, Code: "unauthorized_client", Desc: "This token was issued to another client."})
	}
	sid, _ := claims.String("sid")
	if sid != "" {
		err := p.svc.Store().RevokeSession(ctx, "client "+client.ID, sid, p.now())
		if err != nil && !errors.Is(err, pasee.ErrNotFound) {
			return err
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.NoContent(http.StatusOK)
}

// introspect serves RFC 7662 introspection for authenticated confidential
// clients (resource servers are declared as clients too).
func (p *Provider) introspect(c echo.Context) error {
	form, oerr := readForm(c)
	if oerr != nil {
		return writeOAuth(c, 0, oerr)
	}
	if _, oerr := p.authenticateClient(c, form, false); oerr != nil {
		return writeOAuth(c, 0, oerr)
	}
	raw := form.Get("token")
	if raw == "" {
		return writeOAuth(c, 0, invalidRequest("token is missing."))
	}
	out, err := p.svc.Introspect(c.Request().Context(), raw)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// AuthenticateIntrospection checks the client credentials of a caller of
// Pasee's own POST /tokens/introspect (a JSON API): a confidential client
// in Authorization: Basic, else 401.
func (p *Provider) AuthenticateIntrospection(c echo.Context) error {
	if _, _, ok := c.Request().BasicAuth(); !ok {
		return web.Unauthorized("Client authentication required",
			"Introspection is for declared clients: send the client id and secret in Authorization: Basic.").WithHeader("WWW-Authenticate", `Basic realm="pasee"`)
	}
	if _, oerr := p.authenticateClient(c, url.Values{}, false); oerr != nil {
		return web.Unauthorized("Client authentication required", oerr.Desc).WithHeader("WWW-Authenticate", `Basic realm="pasee"`)
	}
	return nil
}

// isTokenError reports whether err is a refusal of the token itself.
func isTokenError(err error) bool {
	for _, e := range []error{token.ErrMalformed, token.ErrAlgorithm, token.ErrHeader, token.ErrType, token.ErrUnknownKey,
		token.ErrSignature, token.ErrExpired, token.ErrNotYetValid, token.ErrIssuer, token.ErrAudience} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
