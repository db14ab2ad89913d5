package openid_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// wantErrorPage checks an answer is an HTML error page, never a redirect.
func wantErrorPage(t *testing.T, p page, status int, text string) {
	t.Helper()
	if p.status != status || p.location != nil || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, text) {
		t.Fatalf("want an HTML %d page saying %q, got %d Location=%v %.400s", status, text, p.status, p.location, p.body)
	}
}

// wantRedirectError checks an error sent to the client's redirect URI.
func wantRedirectError(t *testing.T, p page, redirectURI, code string) {
	t.Helper()
	if p.status != http.StatusFound || p.location == nil || !strings.HasPrefix(p.location.String(), redirectURI+"?") {
		t.Fatalf("want a redirect to %s, got %d %v %.300s", redirectURI, p.status, p.location, p.body)
	}
	q := p.location.Query()
	if q.Get("error") != code || q.Get("state") != "st-123" || q.Has("code") {
		t.Fatalf("want error=%s with state, got %s", code, p.location)
	}
}

func TestAuthorizationRequestsRefused(t *testing.T) {
	e := start(t, paseetest.SQLite)
	b := newBrowser(t)
	wantErrorPage(t, b.get(authorizeURL(e, "nobody", "http://app.test/cb", nil)), 400, "not registered")
	wantErrorPage(t, b.get(authorizeURL(e, "", "http://app.test/cb", nil)), 400, "not registered")
	// Open redirect attempts: only the exact registered strings pass.
	for _, bad := range []string{
		"http://app.test/cb/extra", "http://app.test/cb?y=2", "http://app.test/cb#frag", "http://evil@app.test/cb",
		"https://app.test/cb", "http://app.test/CB", "http://app.test.evil/cb", "http://app.test/cb/../cb", "", "javascript:alert(1)",
		"http://app.test/cb?x=1&x=2", "http://app.test//cb",
	} {
		wantErrorPage(t, b.get(authorizeURL(e, "app", bad, nil)), 400, "Redirect URI not registered")
	}
	// Another client's redirect URI.
	wantErrorPage(t, b.get(authorizeURL(e, "app", "http://spa.test/cb", nil)), 400, "Redirect URI not registered")
	// A registered URI with a query is accepted as registered.
	if p := b.get(authorizeURL(e, "app", "http://app.test/cb?x=1", nil)); p.status != 200 {
		t.Fatalf("registered URI with query: %d", p.status)
	}
	// Errors the client can be told go to its redirect URI, with state.
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"response_type": {"token"}})), "http://app.test/cb", "unsupported_response_type")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"response_type": {"id_token"}})), "http://app.test/cb", "unsupported_response_type")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"scope": {"email"}})), "http://app.test/cb", "invalid_scope")
	wantRedirectError(t, b.get(authorizeURL(e, "spa", "http://spa.test/cb", nil)), "http://spa.test/cb", "invalid_request")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}})), "http://app.test/cb", "invalid_request")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"none"}})), "http://app.test/cb", "login_required")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"none login"}})), "http://app.test/cb", "invalid_request")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"max_age": {"-1"}})), "http://app.test/cb", "invalid_request")
	wantRedirectError(t, b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"request": {"x.y.z"}})), "http://app.test/cb", "request_not_supported")
}

// loginCode runs the code flow of client to its code, logging in with a
// password if the browser has no single sign-on session.
func loginCode(t *testing.T, e *env, b *browser, client, redirectURI string, extra url.Values) string {
	t.Helper()
	p := b.get(authorizeURL(e, client, redirectURI, extra))
	if p.status == 200 {
		p = b.login(e, p, "alice", alicePassword)
	}
	return codeFrom(t, p, redirectURI)
}

func TestTokenRequestsRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		b := newBrowser(t)
		verifier := xoauth2.GenerateVerifier()
		pkce := url.Values{"code_challenge": {xoauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
		exchange := func(code, verifier string, basic ...string) (int, map[string]any) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}}
			if verifier != "" {
				form.Set("code_verifier", verifier)
			}
			st, out, hdr := tokenPost(t, e, form, basic...)
			if hdr.Get("Cache-Control") != "no-store" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("token answer headers: %v", hdr)
			}
			return st, out
		}
		want := func(st int, out map[string]any, status int, code string) {
			t.Helper()
			if st != status || out["error"] != code {
				t.Fatalf("want %d %s, got %d %v", status, code, st, out)
			}
		}
		// Wrong secret, unknown client, no authentication.
		code := loginCode(t, e, b, "app", "http://app.test/cb", pkce)
		st, out := exchange(code, verifier, "app", "wrong-secret-0123456789")
		want(st, out, 401, "invalid_client")
		st, out = exchange(code, verifier, "nobody", appSecret)
		want(st, out, 401, "invalid_client")
		st, out = exchange(code, verifier)
		want(st, out, 401, "invalid_client")
		// Those did not spend the code; a missing or wrong verifier does.
		st, out = exchange(code, "", "app", appSecret)
		want(st, out, 400, "invalid_grant")
		code = loginCode(t, e, b, "app", "http://app.test/cb", pkce)
		st, out = exchange(code, xoauth2.GenerateVerifier(), "app", appSecret)
		want(st, out, 400, "invalid_grant")
		// The code of another client.
		code = loginCode(t, e, b, "app", "http://app.test/cb", pkce)
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}, "code_verifier": {verifier}}, "other", "other-secret-0123456789abcdef")
		want(st, out, 400, "invalid_grant")
		// A redirect_uri other than the request's.
		code = loginCode(t, e, b, "app", "http://app.test/cb", pkce)
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb?x=1"}, "code_verifier": {verifier}}, "app", appSecret)
		want(st, out, 400, "invalid_grant")
		// Unknown grant, unknown code.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"password"}, "username": {"alice"}}, "app", appSecret)
		want(st, out, 400, "unsupported_grant_type")
		st, out = exchange("made-up", verifier, "app", appSecret)
		want(st, out, 400, "invalid_grant")
		// client_secret_post works like Basic.
		code = loginCode(t, e, b, "app", "http://app.test/cb", pkce)
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"},
			"code_verifier": {verifier}, "client_id": {"app"}, "client_secret": {appSecret}})
		if st != 200 {
			t.Fatalf("client_secret_post: %d %v", st, out)
		}
		appRefresh, _ := out["refresh_token"].(string)
		// A refresh token of another client.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {appRefresh}}, "other", "other-secret-0123456789abcdef")
		want(st, out, 400, "invalid_grant")
		// Refused without being spent: its client still refreshes with it.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {appRefresh}, "scope": {"openid email"}}, "app", appSecret)
		if st != 200 || out["scope"] != "openid email profile groups offline_access" {
			t.Fatalf("refresh by its own client after another's attempt: %d %v", st, out)
		}
		// A refresh cannot widen the scope.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}, "scope": {"openid admin"}}, "app", appSecret)
		want(st, out, 400, "invalid_scope")
		// A public client: PKCE and no secret.
		code = loginCode(t, e, b, "spa", "http://spa.test/cb", pkce)
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://spa.test/cb"},
			"code_verifier": {verifier}, "client_id": {"spa"}})
		if st != 200 || out["id_token"] == nil {
			t.Fatalf("public client: %d %v", st, out)
		}
	})
}

func TestBannedUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		ctx := context.Background()
		b := newBrowser(t)
		code := loginCode(t, e, b, "app", "http://app.test/cb", nil)
		st, out, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}}, "app", appSecret)
		if st != 200 {
			t.Fatalf("exchange: %d %v", st, out)
		}
		refresh, _ := out["refresh_token"].(string)
		if err := e.pasee.App.Store.SetBanned(ctx, "test", "kisee-alice", true, time.Now()); err != nil {
			t.Fatal(err)
		}
		// At refresh.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app", appSecret)
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("a banned user refreshes: %d %v", st, out)
		}
		// The single sign-on session is over, and the login page refuses.
		p := b.get(authorizeURL(e, "app", "http://app.test/cb", nil))
		if p.status != 200 {
			t.Fatalf("a banned user's SSO session still gives codes: %d %v", p.status, p.location)
		}
		p = b.login(e, p, "alice", alicePassword)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "banned") || p.location != nil {
			t.Fatalf("a banned user logs in: %d %v %.300s", p.status, p.location, p.body)
		}
	})
}

func TestLoginPage(t *testing.T) {
	e := start(t, paseetest.SQLite)
	b := newBrowser(t)
	p := b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"login_hint": {"alice"}}))
	for _, want := range []string{`<html lang="en">`, `name="viewport"`, `<label for="password-kisee">`, `value="alice"`, `/admin/admin.css`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("login page lacks %q", want)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP %q", csp)
	}
	// Wrong password: the page again, 401, no redirect.
	w := b.login(e, p, "alice", "wrong password")
	if w.status != 401 || w.location != nil || !strings.Contains(w.body, "Wrong login or password") {
		t.Fatalf("wrong password: %d %.300s", w.status, w.body)
	}
	// A form without the browser's cookie (login CSRF) is refused.
	other := newBrowser(t)
	form := url.Values{"idp": {"kisee"}, "login": {"alice"}, "password": {alicePassword}}
	for _, m := range hidden.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], m[2])
	}
	wantErrorPage(t, other.post(e.pasee.URL+"/oidc/login", form), 403, "another browser")
	// A wrong CSRF field is refused.
	form.Set("csrf", "x")
	wantErrorPage(t, b.post(e.pasee.URL+"/oidc/login", form), 403, "Login refused")
	// The page works once.
	codeFrom(t, b.login(e, p, "alice", alicePassword), "http://app.test/cb")
	wantErrorPage(t, b.login(e, p, "alice", alicePassword), 400, "already used")
}

func TestBruteForceProtectionOnLoginPage(t *testing.T) {
	e := startWith(t, paseetest.SQLite, "[rate_limit]\nmax_failures = 1000\n", "[rate_limit]\nmax_failures = 3\n")
	b := newBrowser(t)
	p := b.get(authorizeURL(e, "app", "http://app.test/cb", nil))
	locked := false
	for i := 0; i < 20 && !locked; i++ {
		w := b.login(e, p, "bob", "wrong password")
		locked = w.status == http.StatusTooManyRequests && w.header.Get("Retry-After") != ""
	}
	if !locked {
		t.Fatal("20 wrong passwords on the login page never locked the account out")
	}
	// The right password from the locked address waits too.
	if w := b.login(e, p, "bob", bobPassword); w.status != http.StatusTooManyRequests {
		t.Fatalf("the right password passes a lockout: %d", w.status)
	}
}

// A code redeemed by many requests at once gives tokens once.
func TestParallelCodeRedemption(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		code := loginCode(t, e, newBrowser(t), "app", "http://app.test/cb", nil)
		const n = 12
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}}, "app", appSecret)
				statuses <- st
			}()
		}
		wg.Wait()
		close(statuses)
		ok := 0
		for st := range statuses {
			switch st {
			case 200:
				ok++
			case 400:
			default:
				t.Errorf("status %d", st)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d parallel redemptions got tokens, want 1", ok, n)
		}
	})
}

// Public clients cannot introspect; an oversized state is refused.
func TestPublicClientLimits(t *testing.T) {
	e := start(t, paseetest.SQLite)
	st, out, _ := formPost(t, e.pasee.URL+"/oidc/introspect", url.Values{"token": {"x"}, "client_id": {"spa"}})
	if st != 401 || out["error"] != "invalid_client" {
		t.Fatalf("a public client introspects: %d %v", st, out)
	}
	p := newBrowser(t).get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"state": {strings.Repeat("s", 5000)}}))
	if p.status != http.StatusFound || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Has("state") {
		t.Fatalf("oversized state: %d %v", p.status, p.location)
	}
}

// Odd and oversized inputs get clear refusals, never a 500.
func TestOddInputs(t *testing.T) {
	e := start(t, paseetest.SQLite)
	post := func(body, contentType string, basic ...string) (int, string) {
		req, _ := http.NewRequest("POST", e.pasee.URL+"/oidc/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if len(basic) == 2 {
			req.SetBasicAuth(basic[0], basic[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, body, ct string
		basic          []string
		status         int
		code           string
	}{
		{"JSON body", `{"grant_type":"authorization_code"}`, "application/json", []string{"app", appSecret}, 400, "invalid_request"},
		{"repeated parameter", "grant_type=authorization_code&code=a&code=b", "application/x-www-form-urlencoded", []string{"app", appSecret}, 400, "invalid_request"},
		{"no grant", "code=a", "application/x-www-form-urlencoded", []string{"app", appSecret}, 400, "invalid_request"},
		{"bad Basic encoding", "grant_type=authorization_code&code=a", "application/x-www-form-urlencoded", []string{"app%zz", appSecret}, 401, "invalid_client"},
		{"two authentications", "grant_type=authorization_code&code=a&client_secret=" + appSecret, "application/x-www-form-urlencoded", []string{"app", appSecret}, 400, "invalid_request"},
		{"huge code", "grant_type=authorization_code&code=" + strings.Repeat("c", 60<<10), "application/x-www-form-urlencoded", []string{"app", appSecret}, 400, "invalid_grant"},
	} {
		st, body := post(tc.body, tc.ct, tc.basic...)
		if st != tc.status || !strings.Contains(body, `"error":"`+tc.code+`"`) {
			t.Errorf("%s: %d %.200s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	// A password over 1 KiB is refused before any provider is asked.
	b := newBrowser(t)
	p := b.login(e, b.get(authorizeURL(e, "app", "http://app.test/cb", nil)), "alice", strings.Repeat("p", 2000))
	if p.status != 400 || !strings.Contains(p.body, "too long") {
		t.Fatalf("2000-byte password: %d %.300s", p.status, p.body)
	}
	// Userinfo without a token, with garbage, with a plain Pasee API token.
	for _, auth := range []string{"", "Bearer garbage", "Basic YTpi"} {
		req, _ := http.NewRequest("GET", e.pasee.URL+"/oidc/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("userinfo with %q: %d %v", auth, resp.StatusCode, resp.Header)
		}
	}
	pair := struct {
		AccessToken string `json:"access_token"`
	}{}
	resp, err := http.Post(e.pasee.URL+"/tokens/?idp=kisee", "application/json", strings.NewReader(`{"login":"alice","password":"`+alicePassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&pair)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", e.pasee.URL+"/oidc/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+pair.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("userinfo with a token not issued for OpenID: %d", resp.StatusCode)
	}
}
