// Package oidc tests Pasee as an OpenID Provider with the client libraries
// relying parties really use: golang.org/x/oauth2 for the code flow and
// github.com/coreos/go-oidc/v3 for discovery and ID token verification,
// against a running Pasee with a Kisee behind it.
package oidc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

const (
	secret        = "grafana-secret-0123456789abcdef"
	alicePassword = "correct horse battery"
)

const clients = `
[[clients]]
id = "grafana"
secret = "` + secret + `"
name = "Grafana"
redirect_uris = ["http://grafana.test/login/generic_oauth"]
post_logout_redirect_uris = ["http://grafana.test/"]

[[clients]]
id = "spa"
name = "Single-page app"
redirect_uris = ["http://spa.test/callback"]
`

// rp is a relying party as an application builds it from the libraries.
type rp struct {
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider
}

func newRP(t *testing.T, issuer, id, secret, redirect string) *rp {
	t.Helper()
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		provider: provider,
		verifier: provider.Verifier(&gooidc.Config{ClientID: id, SupportedSigningAlgs: []string{"ES256", "RS256"}}),
		oauth: &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Endpoint: provider.Endpoint(),
			Scopes: []string{gooidc.ScopeOpenID, "email", "profile", "groups", gooidc.ScopeOfflineAccess}},
	}
}

// browser follows Pasee's redirects and stops at the relying parties
// (hosts *.test), handing back the redirect as a browser would.
type browser struct{ c *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Hostname(), ".test") {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

func (b *browser) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var hidden = regexp.MustCompile(`name="(request|csrf)" value="([^"]*)"`)

// authorize opens u and, if Pasee shows its login page, logs in as
// alice; it returns the redirect to the relying party.
func (b *browser) authorize(t *testing.T, paseeURL, u string, login bool) *url.URL {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	resp, body := b.do(t, req)
	if resp.StatusCode == 200 {
		if !login {
			t.Fatalf("Pasee asked for a password: %.300s", body)
		}
		form := url.Values{"idp": {"kisee"}, "login": {"alice"}, "password": {alicePassword}}
		for _, m := range hidden.FindAllStringSubmatch(body, -1) {
			form.Set(m[1], m[2])
		}
		req, _ = http.NewRequest("POST", paseeURL+"/oidc/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body = b.do(t, req)
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("want a redirect to the relying party, got %d %.300s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestRelyingPartyLibraries(t *testing.T) {
	for _, store := range paseetest.Stores {
		t.Run(string(store), func(t *testing.T) {
			t.Parallel()
			k := kiseetest.Start(t, "")
			p := paseetest.Start(t, store, paseetest.KiseeProvider("kisee", k.URL)+clients)
			ctx := context.Background()
			if err := p.App.Store.EnsureGroup(ctx, "test", "articles.writers", time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := p.App.Store.AddMember(ctx, "test", "articles.writers", "kisee-alice", time.Now()); err != nil {
				t.Fatal(err)
			}
			grafana := newRP(t, p.URL, "grafana", secret, "http://grafana.test/login/generic_oauth")
			b := newBrowser()

			// Code flow with PKCE, as oauth2.Config builds it.
			verifier := oauth2.GenerateVerifier()
			back := b.authorize(t, p.URL, grafana.oauth.AuthCodeURL("state-1", gooidc.Nonce("nonce-1"), oauth2.S256ChallengeOption(verifier)), true)
			if back.Query().Get("state") != "state-1" {
				t.Fatalf("state not returned: %s", back)
			}
			tok, err := grafana.oauth.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			rawID, _ := tok.Extra("id_token").(string)
			id, err := grafana.verifier.Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("go-oidc refuses the ID token: %v", err)
			}
			if id.Subject != "kisee-alice" || id.Nonce != "nonce-1" {
				t.Fatalf("ID token sub %q nonce %q", id.Subject, id.Nonce)
			}
			if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Fatalf("at_hash: %v", err)
			}
			var claims struct {
				Groups []string `json:"groups"`
				Email  string   `json:"email"`
			}
			if err := id.Claims(&claims); err != nil || len(claims.Groups) != 1 || claims.Groups[0] != "articles.writers" || claims.Email != "alice@example.com" {
				t.Fatalf("ID token claims %+v (%v)", claims, err)
			}

			// Userinfo through go-oidc.
			info, err := grafana.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil || info.Subject != "kisee-alice" || info.Email != "alice@example.com" {
				t.Fatalf("userinfo %+v: %v", info, err)
			}

			// Refresh through oauth2's token source.
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			fresh, err := grafana.oauth.TokenSource(ctx, &expired).Token()
			if err != nil || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
				t.Fatalf("refresh: %v", err)
			}
			if rawID, _ := fresh.Extra("id_token").(string); rawID == "" {
				t.Fatal("no ID token on refresh")
			} else if _, err := grafana.verifier.Verify(ctx, rawID); err != nil {
				t.Fatalf("refreshed ID token: %v", err)
			}

			// prompt=none without a session: login_required.
			other := newBrowser()
			back = other.authorize(t, p.URL, grafana.oauth.AuthCodeURL("state-2", oauth2.SetAuthURLParam("prompt", "none")), false)
			if back.Query().Get("error") != "login_required" || back.Query().Get("state") != "state-2" {
				t.Fatalf("prompt=none without session: %s", back)
			}

			// A second client, public, logs in through SSO without a password.
			spa := newRP(t, p.URL, "spa", "", "http://spa.test/callback")
			spaVerifier := oauth2.GenerateVerifier()
			back = b.authorize(t, p.URL, spa.oauth.AuthCodeURL("state-3", oauth2.S256ChallengeOption(spaVerifier)), false)
			spaTok, err := spa.oauth.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(spaVerifier))
			if err != nil {
				t.Fatalf("SSO exchange: %v", err)
			}
			if _, err := spa.verifier.Verify(ctx, spaTok.Extra("id_token").(string)); err != nil {
				t.Fatalf("SSO ID token: %v", err)
			}

			// Revocation of the SPA's refresh token.
			var meta struct {
				Revocation string `json:"revocation_endpoint"`
				EndSession string `json:"end_session_endpoint"`
			}
			if err := grafana.provider.Claims(&meta); err != nil || meta.Revocation == "" || meta.EndSession == "" {
				t.Fatalf("discovery metadata %+v: %v", meta, err)
			}
			resp, err := http.PostForm(meta.Revocation, url.Values{"token": {spaTok.RefreshToken}, "client_id": {"spa"}})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("revocation: %v %v", resp, err)
			}
			resp.Body.Close()
			if _, err := spa.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: spaTok.RefreshToken}).Token(); err == nil {
				t.Fatal("a revoked refresh token still refreshes")
			}

			// Logout ends the single sign-on session and Grafana's session.
			rawID, _ = fresh.Extra("id_token").(string)
			back = b.authorize(t, p.URL, meta.EndSession+"?"+url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"http://grafana.test/"}, "state": {"bye"}}.Encode(), false)
			if back.String() != "http://grafana.test/?state=bye" {
				t.Fatalf("logout redirect: %s", back)
			}
			if _, err := grafana.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); err == nil {
				t.Fatal("Grafana's session survives the logout")
			}
			back = b.authorize(t, p.URL, grafana.oauth.AuthCodeURL("state-4", oauth2.SetAuthURLParam("prompt", "none")), false)
			if back.Query().Get("error") != "login_required" {
				t.Fatalf("SSO survives the logout: %s", back)
			}
			var disc map[string]any
			req, _ := http.NewRequest("GET", p.URL+"/.well-known/openid-configuration", nil)
			_, body := b.do(t, req)
			_ = json.Unmarshal([]byte(body), &disc)
			if disc["issuer"] != p.URL {
				t.Fatalf("issuer %v", disc["issuer"])
			}
		})
	}
}
