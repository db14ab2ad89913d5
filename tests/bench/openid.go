package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/kisee-pasee/suite/tests/oidclogin"
)

// The confidential client every bench Pasee declares: the code flow's
// redirect URI is never called (the load generator stops at it).
const (
	benchClientID     = "bench"
	benchClientSecret = "bench-client-secret-long-enough"
	benchRedirectURI  = "http://127.0.0.1:9/callback"
)

// benchClients is the [[clients]] entry of the bench Pasee.
func benchClients() string {
	return fmt.Sprintf("\n[[clients]]\nid = %q\nsecret = %q\nname = \"Bench\"\nredirect_uris = [%q]\n", benchClientID, benchClientSecret, benchRedirectURI)
}

// OpenID drives Pasee as an OpenID Provider the way a relying party and a
// person's browser do: the discovered endpoints, the login page, the token
// endpoint with client_secret_basic.
type OpenID struct {
	d         *oidclogin.Discovery
	transport http.RoundTripper
	client    *http.Client
	// basic is the bench client's Authorization header (client_secret_basic).
	basic string
}

// NewOpenID discovers the provider at issuer; c's keep-alive connections
// carry every request.
func NewOpenID(ctx context.Context, c *Client, issuer string) (*OpenID, error) {
	d, err := oidclogin.Discover(ctx, c.http, issuer)
	if err != nil {
		return nil, err
	}
	r, _ := http.NewRequest(http.MethodPost, d.TokenEndpoint, nil)
	r.SetBasicAuth(url.QueryEscape(benchClientID), url.QueryEscape(benchClientSecret))
	return &OpenID{d: d, transport: c.http.Transport, client: c.http, basic: r.Header.Get("Authorization")}, nil
}

// RoundTrip is one full authorization: GET the authorization endpoint
// with PKCE in a fresh browser (no single sign-on session), the login
// page, POST its form with user's password, the code at the redirect URI,
// POST the token endpoint. It returns the token answer.
func (o *OpenID) RoundTrip(ctx context.Context, user string) ([]byte, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: o.transport, Jar: jar, Timeout: o.client.Timeout}
	verifier := random()
	sum := sha256.Sum256([]byte(verifier))
	state := random()
	q := url.Values{
		"response_type": {"code"}, "client_id": {benchClientID}, "redirect_uri": {benchRedirectURI},
		"scope": {"openid groups offline_access"}, "state": {state}, "nonce": {random()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	got, err := oidclogin.Code(ctx, browser, o.d.AuthorizationEndpoint+"?"+q.Encode(), benchRedirectURI, user, benchPassword)
	if err != nil {
		return nil, err
	}
	if got.Get("state") != state {
		return nil, fmt.Errorf("state %q came back, want %q", got.Get("state"), state)
	}
	return o.token(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {got.Get("code")},
		"redirect_uri": {benchRedirectURI}, "code_verifier": {verifier},
	})
}

// Refresh is the token endpoint's refresh_token grant.
func (o *OpenID) Refresh(ctx context.Context, refreshToken string) ([]byte, error) {
	return o.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// RefreshOn is Refresh sent on w, as the refresh levels send POST
// /tokens/?refresh: the two doors are compared with the same client.
func (o *OpenID) RefreshOn(ctx context.Context, w *Wire, refreshToken string) ([]byte, error) {
	return refreshGrantOn(ctx, w, o.d.TokenEndpoint, o.basic, refreshToken)
}

// refreshGrantOn sends a token endpoint's refresh_token grant on w, with
// the client's Authorization header authz, and wants 200.
func refreshGrantOn(ctx context.Context, w *Wire, tokenURL, authz, refreshToken string) ([]byte, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	status, body, err := w.Post(ctx, tokenURL, []byte(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", authz)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("token endpoint (refresh_token): status %d: %.200s", status, body)
	}
	return body, nil
}

// token posts form to the token endpoint as the bench client and wants 200.
func (o *OpenID) token(ctx context.Context, form url.Values) ([]byte, error) {
	body, err := postForm(ctx, o.client, o.d.TokenEndpoint, o.basic, form)
	if err != nil {
		return nil, fmt.Errorf("token endpoint (%s): %w", form.Get("grant_type"), err)
	}
	return body, nil
}

// postForm posts form to u with the Authorization header authz and wants
// 200; it returns the answer's body.
func postForm(ctx context.Context, c *http.Client, u, authz string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", authz)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return body, nil
}

// random is 32 random bytes in base64url: a PKCE verifier, a state, a nonce.
func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
