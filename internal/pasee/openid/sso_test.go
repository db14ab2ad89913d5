package openid_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/pasee/openid"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

func exchangeApp(t *testing.T, e *env, code string) map[string]any {
	t.Helper()
	st, out, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}}, "app", appSecret)
	if st != 200 {
		t.Fatalf("exchange: %d %v", st, out)
	}
	return out
}

func TestSingleSignOnAndLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		b := newBrowser(t)
		first := exchangeApp(t, e, loginCode(t, e, b, "app", "http://app.test/cb", nil))
		// A second client: no password asked.
		p := b.get(authorizeURL(e, "other", "http://other.test/cb", nil))
		otherCode := codeFrom(t, p, "http://other.test/cb")
		st, other, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {otherCode}, "redirect_uri": {"http://other.test/cb"}}, "other", "other-secret-0123456789abcdef")
		if st != 200 {
			t.Fatalf("SSO exchange: %d %v", st, other)
		}
		// prompt=none with a session gives a code; prompt=login asks a password.
		codeFrom(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"none"}})), "http://app.test/cb")
		codeFrom(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"max_age": {"3600"}})), "http://app.test/cb")
		if p := b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"login"}})); p.status != 200 || !strings.Contains(p.body, "password") {
			t.Fatalf("prompt=login did not ask for a password: %d", p.status)
		}
		// max_age=0: the login is too old at once. Logging in again keeps
		// one single sign-on session, which still ends what the first opened.
		p = b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"max_age": {"0"}}))
		if p.status != 200 {
			t.Fatalf("max_age=0 did not ask for a password: %d %v", p.status, p.location)
		}
		tokens := exchangeApp(t, e, codeFrom(t, b.login(e, p, "alice", alicePassword), "http://app.test/cb"))
		// A logout to an unregistered address is refused, without redirect.
		hint, _ := tokens["id_token"].(string)
		wantErrorPage(t, b.get(e.pasee.URL+"/oidc/logout?"+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://evil.test/"}}.Encode()), 400, "not registered")
		// Without a hint, the user confirms.
		if p := b.get(e.pasee.URL + "/oidc/logout"); p.status != 200 || !strings.Contains(p.body, `<button type="submit">Log out</button>`) {
			t.Fatalf("logout without hint: %d %.300s", p.status, p.body)
		}
		// RP-initiated logout.
		p = b.get(e.pasee.URL + "/oidc/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://app.test/bye"}, "state": {"s1"}}.Encode())
		if p.status != http.StatusFound || p.location.String() != "http://app.test/bye?state=s1" {
			t.Fatalf("logout: %d %v %.300s", p.status, p.location, p.body)
		}
		// The SSO session and the sessions it opened are over.
		wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"none"}})), "http://app.test/cb", "login_required")
		for _, c := range []struct{ rt, id, secret string }{
			{first["refresh_token"].(string), "app", appSecret}, {tokens["refresh_token"].(string), "app", appSecret},
			{other["refresh_token"].(string), "other", "other-secret-0123456789abcdef"},
		} {
			st, out, _ := tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.rt}}, c.id, c.secret)
			if st != 400 || out["error"] != "invalid_grant" {
				t.Fatalf("%s refreshes after logout: %d %v", c.id, st, out)
			}
		}
		req, _ := http.NewRequest("GET", e.pasee.URL+"/oidc/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tokens["access_token"].(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("userinfo after logout: %d", resp.StatusCode)
		}
		// The audit log tells who logged in through which client, what was
		// issued and the logout; /metrics counts them.
		events, err := e.pasee.App.Store.Audit(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, ev := range events {
			if ev.Target == "kisee-alice" {
				seen[ev.Action] += ev.Detail + ";"
			}
		}
		if !strings.Contains(seen[openid.ActionLogin], "client app") || !strings.Contains(seen[openid.ActionIssue], "client other") || seen[openid.ActionLogout] == "" {
			t.Fatalf("audit log: %v", seen)
		}
		resp, err = http.Get(e.pasee.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{`pasee_oidc_logins_total{result="ok"} 2`, `pasee_oidc_logouts_total 1`, `pasee_oidc_token_requests_total{grant="authorization_code",result="ok"} 3`} {
			if !strings.Contains(string(metrics), m) {
				t.Fatalf("/metrics lacks %s", m)
			}
		}
	})
}

func TestRevocationAndIntrospection(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		b := newBrowser(t)
		tokens := exchangeApp(t, e, loginCode(t, e, b, "app", "http://app.test/cb", nil))
		rt, at := tokens["refresh_token"].(string), tokens["access_token"].(string)
		intro := func(tok string, basic ...string) (int, map[string]any) {
			st, out, _ := formPost(t, e.pasee.URL+"/oidc/introspect", url.Values{"token": {tok}}, basic...)
			return st, out
		}
		if st, _ := intro(at); st != 401 {
			t.Fatalf("anonymous introspection: %d", st)
		}
		if st, out := intro(at, "app", "wrong-secret-0123456789"); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("introspection with a wrong secret: %d %v", st, out)
		}
		if st, out := intro(at, "other", "other-secret-0123456789abcdef"); st != 200 || out["active"] != true || out["client_id"] != "app" {
			t.Fatalf("introspection: %d %v", st, out)
		}
		// Another client cannot revoke app's token.
		st, out, _ := formPost(t, e.pasee.URL+"/oidc/revoke", url.Values{"token": {rt}}, "other", "other-secret-0123456789abcdef")
		if st != 400 || out["error"] != "unauthorized_client" {
			t.Fatalf("revocation by another client: %d %v", st, out)
		}
		if st, out := intro(rt, "app", appSecret); st != 200 || out["active"] != true {
			t.Fatalf("refused revocation revoked: %d %v", st, out)
		}
		// Garbage is no error (RFC 7009).
		if st, _, _ := formPost(t, e.pasee.URL+"/oidc/revoke", url.Values{"token": {"garbage"}}, "app", appSecret); st != 200 {
			t.Fatalf("revoking garbage: %d", st)
		}
		if st, _, _ := formPost(t, e.pasee.URL+"/oidc/revoke", url.Values{"token": {rt}}, "app", appSecret); st != 200 {
			t.Fatalf("revocation: %d", st)
		}
		for _, tok := range []string{rt, at} {
			if st, out := intro(tok, "app", appSecret); st != 200 || out["active"] != false {
				t.Fatalf("a revoked token is active: %d %v", st, out)
			}
		}
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "app", appSecret)
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("a revoked refresh token refreshes: %d %v", st, out)
		}
	})
}
