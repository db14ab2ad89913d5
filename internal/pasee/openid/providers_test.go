package openid_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

var redirectButton = regexp.MustCompile(`(?s)<form class="provider card" method="get" action="([^"]+)">.*?name="request" value="([^"]+)".*?name="idp" value="github"`)

// The login page's button for a redirect provider runs the browser flow
// and comes back to the pending authorization.
func TestRedirectProviderLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		k := kiseetest.Start(t, "")
		github := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})
		p := paseetest.Start(t, store, paseetest.KiseeProvider("kisee", k.URL)+fmt.Sprintf(`
[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
preset = "github"
app_id = %q
app_secret = %q
auth_url = %q
token_url = %q
userinfo_url = %q
`, github.ClientID(), github.ClientSecret(), github.AuthURL(), github.TokenURL(), github.UserinfoURL())+clients)
		github.SetRedirectURIs(p.URL + "/tokens/?idp=github")
		e := &env{kisee: k, pasee: p}
		b := newBrowser(t)
		page := b.get(authorizeURL(e, "app", "http://app.test/cb", nil))
		m := redirectButton.FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no github button on the login page: %.800s", page.body)
		}
		code := codeFrom(t, b.get(m[1]+"?"+url.Values{"request": {m[2]}, "idp": {"github"}}.Encode()), "http://app.test/cb")
		st, out, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://app.test/cb"}}, "app", appSecret)
		if st != 200 {
			t.Fatalf("exchange: %d %v", st, out)
		}
		id := verifyIDToken(t, e, out["id_token"].(string), "app")
		if id.Subject != "github-583231" {
			t.Fatalf("sub %q", id.Subject)
		}
		// The return works once, and not from another browser.
		other := newBrowser(t)
		wantErrorPage(t, other.get(m[1]+"?"+url.Values{"request": {m[2]}, "idp": {"github"}}.Encode()), 400, "already used")
		page = other.get(authorizeURL(e, "app", "http://app.test/cb", url.Values{"prompt": {"login"}}))
		m = redirectButton.FindStringSubmatch(page.body)
		wantErrorPage(t, b.get(m[1]+"?"+url.Values{"request": {m[2]}, "idp": {"github"}}.Encode()), 403, "another browser")
	})
}

// A client asking for RS256 gets ID tokens signed with the RSA key,
// which /jwks.json publishes; the others keep Pasee's key.
func TestRS256IDTokens(t *testing.T) {
	rsaKey, err := token.GenerateKey(token.RS256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := rsaKey.MarshalPEM()
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL)+strings.Replace(clients,
		`redirect_uris = ["http://other.test/cb"]`, `redirect_uris = ["http://other.test/cb"]`+"\nid_token_signed_response_alg = \"RS256\"", 1)+
		"[oidc]\nrsa_private_key = '''"+string(pem)+"'''\n")
	e := &env{kisee: k, pasee: p}
	b := newBrowser(t)
	st, out, _ := tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {loginCode(t, e, b, "app", "http://app.test/cb", nil)},
		"redirect_uri": {"http://app.test/cb"}}, "app", appSecret)
	if h := headerOf(t, out["id_token"].(string)); st != 200 || h["alg"] != "ES256" || h["kid"] != p.Key.KeyID() {
		t.Fatalf("a client that did not ask for RS256: %d, header %v", st, h)
	}
	code := codeFrom(t, b.get(authorizeURL(e, "other", "http://other.test/cb", nil)), "http://other.test/cb")
	st, out, _ = tokenPost(t, e, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://other.test/cb"}}, "other", "other-secret-0123456789abcdef")
	if st != 200 {
		t.Fatalf("exchange: %d %v", st, out)
	}
	resp, err := http.Get(p.URL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	keys, err := token.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	v := token.NewVerifier(token.NewStaticKeySet(keys...), token.WithTypes(token.TypeJWT), token.WithIssuer(p.URL), token.WithAudience("other"))
	c, err := v.Verify(context.Background(), out["id_token"].(string))
	if err != nil {
		t.Fatalf("the RS256 ID token does not verify with /jwks.json: %v", err)
	}
	if h := headerOf(t, out["id_token"].(string)); c.Subject != "kisee-alice" || h["alg"] != "RS256" || h["kid"] != rsaKey.KeyID() {
		t.Fatalf("sub %q, header %v: want RS256 with the RSA key's kid", c.Subject, h)
	}
}

// headerOf decodes the JOSE header of a token.
func headerOf(t *testing.T, raw string) map[string]string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}
