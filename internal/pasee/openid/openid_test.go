package openid_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

const (
	appSecret     = "app-secret-0123456789abcdef"
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
)

// clients are the relying parties of the tests: a confidential app, a
// public single-page app, and a second confidential app for SSO.
const clients = `
[[clients]]
id = "app"
secret = "` + appSecret + `"
name = "The App"
redirect_uris = ["http://app.test/cb", "http://app.test/cb?x=1"]
post_logout_redirect_uris = ["http://app.test/bye"]

[[clients]]
id = "spa"
name = "The SPA"
redirect_uris = ["http://spa.test/cb"]

[[clients]]
id = "other"
secret = "other-secret-0123456789abcdef"
name = "Other App"
redirect_uris = ["http://other.test/cb"]
`

type env struct {
	kisee *kiseetest.Server
	pasee *paseetest.Server
}

func start(t *testing.T, store paseetest.Store) *env {
	t.Helper()
	return startWith(t, store, "", "")
}

// startWith starts Kisee with kiseeExtra settings and Pasee with
// paseeExtra (top-level tables) in front of its provider and clients.
func startWith(t *testing.T, store paseetest.Store, kiseeExtra, paseeExtra string) *env {
	t.Helper()
	k := kiseetest.Start(t, kiseeExtra)
	p := paseetest.Start(t, store, paseeExtra+paseetest.KiseeProvider("kisee", k.URL)+clients)
	return &env{kisee: k, pasee: p}
}

func forEachStore(t *testing.T, f func(t *testing.T, store paseetest.Store)) {
	for _, s := range paseetest.Stores {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			f(t, s)
		})
	}
}

// browser is a user agent with cookies that stops at the clients'
// redirect URIs (hosts *.test), as a browser would hand them to the app.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Hostname(), ".test") {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

type page struct {
	status   int
	body     string
	location *url.URL
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(body), header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = url.Parse(loc)
	}
	return p
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hidden = regexp.MustCompile(`name="(request|csrf)" value="([^"]*)"`)

// login fills the kisee form of a login page.
func (b *browser) login(e *env, p page, user, password string) page {
	b.t.Helper()
	if p.status != 200 || !strings.Contains(p.body, `action="`+e.pasee.URL+`/oidc/login"`) {
		b.t.Fatalf("not a login page: %d %.300s", p.status, p.body)
	}
	form := url.Values{"idp": {"kisee"}, "login": {user}, "password": {password}}
	for _, m := range hidden.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], m[2])
	}
	return b.post(e.pasee.URL+"/oidc/login", form)
}

func authorizeURL(e *env, client, redirectURI string, extra url.Values) string {
	v := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid email profile groups offline_access"}, "state": {"st-123"}, "nonce": {"n-456"}}
	for k, vs := range extra {
		v[k] = vs
	}
	return e.pasee.URL + "/oidc/authorize?" + v.Encode()
}

// codeFrom checks a redirect to the client and returns its code.
func codeFrom(t *testing.T, p page, redirectURI string) string {
	t.Helper()
	if p.status != http.StatusFound || p.location == nil {
		t.Fatalf("want a redirect to the client, got %d %.300s", p.status, p.body)
	}
	got := *p.location
	got.RawQuery = ""
	want, _ := url.Parse(redirectURI)
	want.RawQuery = ""
	if got.String() != want.String() {
		t.Fatalf("redirected to %s, want %s", p.location, redirectURI)
	}
	q := p.location.Query()
	if q.Get("state") != "st-123" || q.Get("code") == "" {
		t.Fatalf("redirect %s lacks code or state", p.location)
	}
	return q.Get("code")
}

func oauthConfig(e *env, client, secret, redirectURI string) *xoauth2.Config {
	return &xoauth2.Config{ClientID: client, ClientSecret: secret, RedirectURL: redirectURI,
		Endpoint: xoauth2.Endpoint{AuthURL: e.pasee.URL + "/oidc/authorize", TokenURL: e.pasee.URL + "/oidc/token"}}
}

// tokenPost posts a form to the token endpoint and returns status and JSON.
func tokenPost(t *testing.T, e *env, form url.Values, basic ...string) (int, map[string]any, http.Header) {
	t.Helper()
	return formPost(t, e.pasee.URL+"/oidc/token", form, basic...)
}

func formPost(t *testing.T, u string, form url.Values, basic ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out, resp.Header
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func verifyIDToken(t *testing.T, e *env, raw, aud string) *token.Claims {
	t.Helper()
	v := token.NewVerifier(token.NewStaticKeySet(e.pasee.Key.Public()), token.WithTypes(token.TypeJWT),
		token.WithIssuer(e.pasee.URL), token.WithAudience(aud))
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	return c
}

func TestDiscovery(t *testing.T) {
	e := start(t, paseetest.SQLite)
	b := newBrowser(t)
	p := b.get(e.pasee.URL + "/.well-known/openid-configuration")
	if p.status != 200 {
		t.Fatalf("discovery: %d %s", p.status, p.body)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(p.body), &d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != e.pasee.URL || d["token_endpoint"] != e.pasee.URL+"/oidc/token" || d["jwks_uri"] != e.pasee.URL+"/jwks.json" {
		t.Fatalf("discovery: %v", d)
	}
	if rt, _ := json.Marshal(d["response_types_supported"]); string(rt) != `["code"]` {
		t.Fatalf("response_types_supported: %s", rt)
	}
	if m, _ := json.Marshal(d["code_challenge_methods_supported"]); string(m) != `["S256"]` {
		t.Fatalf("code_challenge_methods_supported: %s", m)
	}
}

func TestCodeFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		e := start(t, store)
		ctx := context.Background()
		if err := e.pasee.App.Store.EnsureGroup(ctx, "test", "articles.writers", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.pasee.App.Store.AddMember(ctx, "test", "articles.writers", "kisee-alice", time.Now()); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		verifier := xoauth2.GenerateVerifier()
		cfg := oauthConfig(e, "app", appSecret, "http://app.test/cb")
		p := b.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"code_challenge": {xoauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}))
		if !strings.Contains(p.body, "The App") {
			t.Fatalf("the login page does not name the client: %.500s", p.body)
		}
		if ck := p.header.Get("Set-Cookie"); !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
			t.Fatalf("login cookie: %q", ck)
		}
		code := codeFrom(t, b.login(e, p, "alice", alicePassword), "http://app.test/cb")
		tok, err := cfg.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		id := verifyIDToken(t, e, raw, "app")
		if id.Subject != "kisee-alice" {
			t.Fatalf("sub %q", id.Subject)
		}
		if n, _ := id.String("nonce"); n != "n-456" {
			t.Fatalf("nonce %q", n)
		}
		if g, _ := id.Strings("groups"); len(g) != 1 || g[0] != "articles.writers" {
			t.Fatalf("groups %v", g)
		}
		if em, _ := id.String("email"); em != "alice@example.com" {
			t.Fatalf("email %q", em)
		}
		if !id.Has("auth_time") || !id.Has("at_hash") {
			t.Fatalf("auth_time or at_hash missing: %v", id.Extra)
		}
		at := claimsOf(t, tok.AccessToken)
		if at["client_id"] != "app" || at["sub"] != "kisee-alice" {
			t.Fatalf("access token claims: %v", at)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		// Userinfo, GET and POST.
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, e.pasee.URL+"/oidc/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var ui map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&ui)
			resp.Body.Close()
			if resp.StatusCode != 200 || ui["sub"] != "kisee-alice" || ui["email"] != "alice@example.com" {
				t.Fatalf("userinfo %s: %d %v", method, resp.StatusCode, ui)
			}
		}
		// Refresh rotates; the spent token past the grace window revokes.
		st, out, hdr := tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "app", appSecret)
		if st != 200 || out["refresh_token"] == nil || out["id_token"] == nil || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("refresh: %d %v %v", st, out, hdr)
		}
		rotated, _ := out["refresh_token"].(string)
		// The refreshed ID token says what the refreshed access token
		// says: same user, groups and released claims, same expiry, and
		// at_hash of that access token.
		refreshedAT, _ := out["access_token"].(string)
		rawID, _ := out["id_token"].(string)
		rid := verifyIDToken(t, e, rawID, "app")
		rat := claimsOf(t, refreshedAT)
		sum := sha256.Sum256([]byte(refreshedAT))
		if g, _ := rid.Strings("groups"); rid.Subject != "kisee-alice" || len(g) != 1 || g[0] != "articles.writers" {
			t.Fatalf("refreshed ID token: sub %q, groups %v", rid.Subject, g)
		}
		if em, _ := rid.String("email"); em != "alice@example.com" {
			t.Fatalf("refreshed ID token: email %q", em)
		}
		if exp, _ := rat["exp"].(float64); rid.ExpiresAt.Unix() != int64(exp) {
			t.Fatalf("refreshed ID token expires at %d, its access token at %v", rid.ExpiresAt.Unix(), rat["exp"])
		}
		if h, _ := rid.String("at_hash"); h != base64.RawURLEncoding.EncodeToString(sum[:16]) {
			t.Fatalf("refreshed ID token: at_hash %q is not the new access token's", h)
		}
		if sid, _ := rid.String("sid"); sid == "" || sid != rat["sid"] {
			t.Fatalf("refreshed ID token: sid %q, access token's %v", sid, rat["sid"])
		}
		// The code is spent: a replay is refused and revokes the session.
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}, "code_verifier": {verifier}}, "app", appSecret)
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("replayed code: %d %v", st, out)
		}
		st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated}}, "app", appSecret)
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("the session of a replayed code still refreshes: %d %v", st, out)
		}
	})
}
