package openid

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// logout serves RP-initiated logout (OpenID Connect RP-Initiated Logout
// 1.0): it ends the browser's single sign-on session and every session
// it opened, then returns to the client's registered
// post_logout_redirect_uri with its state. Without an id_token_hint of
// the logged-in user, the user confirms first, so that a link on another
// site cannot log them out.
func (p *Provider) logout(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The logout request could not be read.")
		}
		q = r.PostForm
	}
	for name, vs := range q {
		if len(vs) > 1 {
			return p.errorPage(c, http.StatusBadRequest, "Invalid request", "The "+name+" parameter is repeated.")
		}
	}
	ctx := r.Context()
	var client *Client
	hintSub := ""
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, err := p.idHints.Verify(ctx, hint)
		if err != nil || len(claims.Audience) == 0 {
			return p.errorPage(c, http.StatusBadRequest, "Invalid logout request", "The id_token_hint is not an ID token this Pasee issued.")
		}
		hintSub = claims.Subject
		client = p.clients[claims.Audience[0]]
	}
	if id := q.Get("client_id"); id != "" {
		named, ok := p.clients[id]
		if !ok || (client != nil && client != named) {
			return p.errorPage(c, http.StatusBadRequest, "Invalid logout request", "client_id names no registered client, or another than the id_token_hint's.")
		}
		client = named
	}
	back := q.Get("post_logout_redirect_uri")
	if back != "" && (client == nil || !slices.Contains(client.PostLogoutRedirectURIs, back)) {
		return p.errorPage(c, http.StatusBadRequest, "Logout redirect not registered",
			"post_logout_redirect_uri must equal one of the client's post_logout_redirect_uris exactly, and the client must be named (id_token_hint or client_id). Pasee sends nothing there.")
	}
	sso, err := p.currentSSO(c)
	if err != nil {
		return err
	}
	if sso != nil {
		confirmed := hintSub != "" && hintSub == sso.User
		if !confirmed && r.Method == http.MethodPost {
			ck, err := c.Cookie(CSRFCookie)
			confirmed = err == nil && ck.Value != "" && equal(q.Get("csrf"), ck.Value)
		}
		if !confirmed {
			params := map[string]string{}
			for _, k := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "client_id"} {
				if v := q.Get(k); v != "" {
					params[k] = v
				}
			}
			d := pageData{Title: "Log out", Logout: true, LogoutParams: params, CSRF: p.csrfCookie(c)}
			if client != nil {
				d.ClientName = client.Name
			}
			return p.render(c, http.StatusOK, d)
		}
		ck, _ := c.Cookie(SSOCookie)
		ids, err := p.store.EndSSO(ctx, hashOf(ck.Value), p.now())
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, id := range ids {
			if err := p.svc.Store().RevokeSession(ctx, sso.User, id, p.now()); err != nil && !errors.Is(err, pasee.ErrNotFound) {
				p.logger.WarnContext(ctx, "openid logout: cannot revoke a session", "error", err)
			}
		}
		detail := "single sign-on session and " + itoa(len(ids)) + " session(s)"
		if client != nil {
			detail += ", from client " + client.ID
		}
		p.audit(ctx, sso.User, ActionLogout, sso.User, detail)
		p.metrics.logouts.Inc()
		p.logger.InfoContext(ctx, "openid logout", "user", sso.User, "sessions", len(ids))
	}
	c.SetCookie(p.cookie(SSOCookie, "", -1))
	if back != "" {
		v := url.Values{}
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		if len(v) == 0 {
			return c.Redirect(http.StatusFound, back)
		}
		return c.Redirect(http.StatusFound, withParams(back, v))
	}
	return p.render(c, http.StatusOK, pageData{Title: "Logged out", Done: true, Detail: "You are logged out of Pasee."})
}

func itoa(n int) string { return strconv.Itoa(n) }
