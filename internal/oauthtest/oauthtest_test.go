package oauthtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/oauthtest"
)

const redirect = "http://127.0.0.1:1/cb"

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func authorize(t *testing.T, s *oauthtest.Server, q url.Values) *http.Response {
	t.Helper()
	resp, err := noFollow.Get(s.AuthURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func exchange(t *testing.T, s *oauthtest.Server, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(s.ClientID(), s.ClientSecret())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// The test server checks what a real provider checks; a test double that
// accepted anything would prove nothing.
func TestServerChecksLikeARealProvider(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.Twitter, RedirectURIs: []string{redirect}})
	verifier := "a-verifier-long-enough-to-be-valid-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	good := url.Values{"client_id": {s.ClientID()}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, vs := range good {
			q[key] = vs
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	if r := authorize(t, s, with("redirect_uri", "http://127.0.0.1:1/other")); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("unregistered redirect_uri: %d, Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := authorize(t, s, with("client_id", "someone")); r.StatusCode != 400 {
		t.Fatalf("unknown client: %d", r.StatusCode)
	}
	if r := authorize(t, s, with("code_challenge", "")); !strings.Contains(r.Header.Get("Location"), "error=invalid_request") {
		t.Fatalf("Twitter without PKCE: %v", r.Header.Get("Location"))
	}
	code := func() string {
		loc, _ := url.Parse(authorize(t, s, good).Header.Get("Location"))
		if loc.Query().Get("state") != "st" {
			t.Fatalf("state not returned: %s", loc)
		}
		return loc.Query().Get("code")
	}
	form := func(c, v, redirectURI string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "code_verifier": {v}, "redirect_uri": {redirectURI}}
	}
	c := code()
	// Twitter authenticates clients with HTTP Basic only.
	f := form(c, verifier, redirect)
	f.Set("client_id", s.ClientID())
	f.Set("client_secret", s.ClientSecret())
	if status, _ := exchange(t, s, f, false); status != 401 {
		t.Fatalf("secret in the form: %d", status)
	}
	if status, ans := exchange(t, s, form(c, verifier, "http://127.0.0.1:1/other"), true); status != 400 || ans["error"] != "invalid_grant" {
		t.Fatalf("redirect_uri mismatch: %d %v", status, ans)
	}
	c = code()
	if status, ans := exchange(t, s, form(c, "another-verifier-long-enough-0123456789-abcdef", redirect), true); status != 400 || !strings.Contains(ans["error_description"].(string), "PKCE") {
		t.Fatalf("PKCE mismatch: %d %v", status, ans)
	}
	c = code()
	status, ans := exchange(t, s, form(c, verifier, redirect), true)
	if status != 200 || ans["access_token"] == "" {
		t.Fatalf("good exchange: %d %v", status, ans)
	}
	if status, ans := exchange(t, s, form(c, verifier, redirect), true); status != 400 || ans["error_description"] != "authorization code already used" {
		t.Fatalf("replayed code: %d %v", status, ans)
	}
	// The replay revoked the access token the code gave.
	req, _ := http.NewRequest("GET", s.UserinfoURL(), nil)
	req.Header.Set("Authorization", "Bearer "+ans["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("userinfo with a revoked token: %d", resp.StatusCode)
	}
}
