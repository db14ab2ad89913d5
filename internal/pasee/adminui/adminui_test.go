package adminui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/adminui"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// start runs a Pasee with a Kisee (password) and a GitHub-like provider
// (redirect), and no [cors] setting at all.
func start(t *testing.T) (*paseetest.Server, *oauthtest.Server) {
	t.Helper()
	kisee := kiseetest.Start(t, "")
	github := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})
	pasee := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", kisee.URL)+fmt.Sprintf(`
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
`, github.ClientID(), github.ClientSecret(), github.AuthURL(), github.TokenURL(), github.UserinfoURL()))
	github.SetRedirectURIs(pasee.URL + "/tokens/?idp=github")
	return pasee, github
}

// noHTTPRedirect is a client that shows redirects instead of following them.
var noHTTPRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noHTTPRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The page and its files come from the binary with a strict policy: no
// inline script or style anywhere, nothing from another origin.
func TestPageIsServedWithAStrictPolicy(t *testing.T) {
	pasee, _ := start(t)
	page := Do(t, "GET", pasee.URL+"/admin/", nil).WantStatus(t, 200)
	if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q", ct)
	}
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	html := string(page.Body)
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(html, -1)
	if len(scripts) == 0 {
		t.Fatal("the page loads no script")
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], `src="/admin/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`), // an event handler attribute
		regexp.MustCompile(`(?i)\sstyle\s*=`),    // a style attribute
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`), // anything from another origin
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("the page holds %q", m)
		}
	}
	// The shell has one login button: the page is a client of Pasee as an
	// OpenID Provider, whose login page lists the providers.
	for _, want := range []string{`id="login-button"`, `data-client-id="pasee-admin"`, `data-authorize="/oidc/authorize"`, `data-token="/oidc/token"`,
		`data-revoke="/oidc/revoke"`, `data-end-session="/oidc/logout"`, `data-redirect-uri="` + pasee.URL + `/admin/"`, `<main id="main"`, `<nav id="nav" aria-label="Sections"`, `role="status"`, `role="alert"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	for name, ct := range map[string]string{"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"} {
		r := Do(t, "GET", pasee.URL+"/admin/"+name, nil).WantStatus(t, 200)
		if r.Header.Get("Content-Type") != ct || r.Header.Get("Content-Security-Policy") != adminui.CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", name, r.Header)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("%s: Cache-Control %q", name, cc)
		}
		if name == "admin.js" {
			// Trusted Types would stop these at run time; keep them out of the source.
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage."} {
				if strings.Contains(string(r.Body), sink) {
					t.Errorf("admin.js uses %s", sink)
				}
			}
		}
	}
	Do(t, "GET", pasee.URL+"/admin/nope.js", nil).WantProblem(t, 404, "Not found")
	if resp := get(t, pasee.URL+"/admin"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("GET /admin: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Pasee always accepts its own page as a redirect_uri of the browser flow,
// with nothing in [cors] allowed_redirect_uris; other addresses stay refused.
func TestPageIsAnAllowedRedirectURI(t *testing.T) {
	pasee, github := start(t)
	flow := func(redirectURI string) *http.Response {
		q := url.Values{"idp": {"github"}, "redirect_uri": {redirectURI}, "state": {"s"}}
		return get(t, pasee.URL+"/tokens/?"+q.Encode())
	}
	if resp := flow(adminui.RedirectURI(pasee.URL)); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), github.AuthURL()) {
		t.Fatalf("redirect_uri %s/admin/: %d to %q", pasee.URL, resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, other := range []string{pasee.URL + "/admin", pasee.URL + "/admin/x", pasee.URL + "/other/", "https://evil.example/admin/"} {
		q := url.Values{"idp": {"github"}, "redirect_uri": {other}, "state": {"s"}}
		Do(t, "GET", pasee.URL+"/tokens/?"+q.Encode(), nil).WantProblem(t, 400, "Redirect URI not allowed")
	}
}
