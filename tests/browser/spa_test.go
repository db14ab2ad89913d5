package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/testenv"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips it loudly
// (fails under CI=true) when Chromium is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "Browser", fmt.Sprintf("%s not found (%v); apt-get install chromium chromium-driver", chromiumPath, err))
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// serveSPA serves examples/spa, with a config.js pointing at pasee.
func serveSPA(t *testing.T, pasee func() string) *httptest.Server {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "spa")
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Fatalf("example app not found: %v", err)
	}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/config.js" {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, "window.SPA_CONFIG = {pasee: %q};\n", pasee())
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The example single-page app logs in through Pasee with Kisee (password)
// and with an OAuth 2.0 provider (redirect), shows the user's groups from
// the access token, and refreshes it before it expires.
func TestSinglePageApp(t *testing.T) {
	ctx := browser(t)
	started := time.Now()
	var paseeURL string
	spa := serveSPA(t, func() string { return paseeURL })
	kisee := kiseetest.Start(t, "")
	github := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, Interactive: true})
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

[jwt]
access_ttl = "6s"

[cors]
allowed_origins = [%q]
allowed_redirect_uris = [%q]
`, github.ClientID(), github.ClientSecret(), github.AuthURL(), github.TokenURL(), github.UserinfoURL(), spa.URL, spa.URL+"/"))
	paseeURL = pasee.URL
	github.SetRedirectURIs(pasee.URL + "/tokens/?idp=github")
	addToGroups(t, pasee, "kisee-alice", "staff", "articles.writers")
	addToGroups(t, pasee, "github-583231", "articles.readers")

	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("#%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	groups := func() []string {
		t.Helper()
		g, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#groups li")].map(li => li.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nerror shown by the page: %q", what, err, pageError(ctx))
		}
	}

	// Kisee: the password form the page builds from GET /tokens/.
	do("log in with Kisee",
		chromedp.Navigate(spa.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-kisee")),
		chromedp.SendKeys(chromedp.CSS(`#form-kisee input[name=login]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#form-kisee input[name=password]`), "correct horse battery"),
		chromedp.Click(chromedp.ID("login-kisee")),
		chromedp.WaitVisible(chromedp.ID("session")),
	)
	if user := text("user"); user != "kisee-alice" {
		t.Fatalf("user %q", user)
	}
	if g := groups(); !slices.Equal(g, []string{"articles.writers", "staff"}) {
		t.Fatalf("groups %v", g)
	}
	// The access token lives 6 s: the page refreshes it before expiry, and
	// the new token carries the groups as they are now.
	firstJTI := text("jti")
	addToGroups(t, pasee, "kisee-alice", "editors")
	do("refresh before expiry", chromedp.Poll[chromedp.Void](`document.getElementById("refreshes").textContent === "1"`, chromedp.WithPollingTimeout(15*time.Second)))
	if jti := text("jti"); jti == firstJTI || jti == "" {
		t.Fatalf("the access token was not replaced (jti %q)", jti)
	}
	if g := groups(); !slices.Equal(g, []string{"articles.writers", "editors", "staff"}) {
		t.Fatalf("groups after refresh %v", g)
	}
	do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-kisee")))

	// GitHub: Pasee, the provider's consent page, Pasee, back to the app
	// with a one-time code, redeemed by the page.
	do("log in with GitHub",
		chromedp.Click(chromedp.ID("redirect-github")),
		chromedp.WaitVisible(chromedp.ID("allow")),
		chromedp.Click(chromedp.ID("allow")),
		chromedp.WaitVisible(chromedp.ID("session")),
	)
	if user := text("user"); user != "github-583231" {
		t.Fatalf("user %q", user)
	}
	if g := groups(); !slices.Equal(g, []string{"articles.readers"}) {
		t.Fatalf("groups %v", g)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != spa.URL+"/" {
		t.Fatalf("the one-time code stayed in the address bar: %s", loc)
	}
	if q := github.AuthorizeRequests()[0]; q.Get("code_challenge_method") != "S256" {
		t.Fatalf("no PKCE towards the provider: %v", q)
	}

	// Declining at the provider brings the user back with access_denied.
	do("decline at GitHub",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("redirect-github")),
		chromedp.Click(chromedp.ID("redirect-github")),
		chromedp.WaitVisible(chromedp.ID("deny")),
		chromedp.Click(chromedp.ID("deny")),
		chromedp.WaitVisible(chromedp.ID("redirect-github")),
		chromedp.Poll[chromedp.Void](`document.getElementById("error").textContent.includes("Access denied")`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	t.Logf("browser test took %s", time.Since(started).Round(time.Millisecond))
}

// pageError is what the page shows in #error, for failure messages.
func pageError(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("error") || {}).textContent || ""`))
	return s
}

func addToGroups(t *testing.T, p *paseetest.Server, user string, groups ...string) {
	t.Helper()
	for _, g := range groups {
		if err := p.App.Store.EnsureGroup(context.Background(), "test", g, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := p.App.Store.AddMember(context.Background(), "test", g, user, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}
