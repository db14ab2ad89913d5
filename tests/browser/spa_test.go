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
	// Start the browser on ctx itself: the first run owns it, and steps
	// run on shorter-lived contexts derived from ctx must not close it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// serveSPA serves examples/spa, with a config.js pointing at pasee. The
// page needs vendor/oidc-client-ts.min.js, which `npm ci` in examples/spa
// puts there (.ci/run does): without it the test skips loudly, except
// under CI=true, where it fails.
func serveSPA(t *testing.T, pasee func() string) *httptest.Server {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "spa")
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Fatalf("example app not found: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vendor", "oidc-client-ts.min.js")); err != nil {
		missing := fmt.Sprintf("the example app's library is missing (%v): run `npm ci` in examples/spa", err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: the browser end-to-end test cannot run: %s", missing)
		}
		fmt.Fprintln(os.Stderr, "WARNING: the example app's browser test is SKIPPED: "+missing)
		t.Skip(missing)
	}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/config.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, "window.SPA_CONFIG = {pasee: %q, clientId: \"example-spa\", renewBeforeSeconds: 3};\n", pasee())
		case strings.HasPrefix(r.URL.Path, "/node_modules/"):
			http.NotFound(w, r) // what the app needs is in vendor/
		default:
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The example single-page app, a public client of Pasee run by
// oidc-client-ts, logs in with the authorization code flow and PKCE
// through Pasee's login page, with Kisee (password) and with an OAuth 2.0
// provider (redirect); it shows the user's groups from the access token,
// renews it with the refresh token before it expires, and logs out at
// Pasee's end-session endpoint, which ends the single sign-on session; a
// user who declines at the provider comes back with access_denied.
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

[[clients]]
id = "example-spa"
name = "Example app"
redirect_uris = [%q]
post_logout_redirect_uris = [%q]

[cors]
allowed_origins = [%q]
`, github.ClientID(), github.ClientSecret(), github.AuthURL(), github.TokenURL(), github.UserinfoURL(), spa.URL+"/", spa.URL+"/", spa.URL))
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
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(step, steps...); err != nil {
			t.Fatalf("%s: %v\nerror shown by the page: %q\n%s", what, err, pageError(ctx), whereAmI(ctx))
		}
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}

	// Kisee: the app sends the browser to Pasee's login page, whose form
	// posts the password to Pasee, which sends it back with a code.
	do("go to Pasee's login page",
		chromedp.Navigate(spa.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-button")),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-kisee")),
	)
	if loc := location(); !strings.HasPrefix(loc, pasee.URL+"/") {
		t.Fatalf("the login page is not Pasee's: %s", loc)
	}
	do("log in with Kisee",
		chromedp.SendKeys(chromedp.ID("login-kisee"), "alice"),
		chromedp.SendKeys(chromedp.ID("password-kisee"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("password-kisee")),
		chromedp.WaitVisible(chromedp.ID("session")),
	)
	if user := text("user"); user != "kisee-alice" {
		t.Fatalf("user %q", user)
	}
	if g := groups(); !slices.Equal(g, []string{"articles.writers", "staff"}) {
		t.Fatalf("groups %v", g)
	}
	if loc := location(); loc != spa.URL+"/" {
		t.Fatalf("the one-time code stayed in the address bar: %s", loc)
	}
	// The access token lives 6 s: the library renews it 3 s before expiry
	// with the refresh token, and the new token carries the groups as they
	// are now.
	firstJTI := text("jti")
	addToGroups(t, pasee, "kisee-alice", "editors")
	do("renew before expiry", chromedp.Poll[chromedp.Void](`Number(document.getElementById("refreshes").textContent) >= 1`, chromedp.WithPollingTimeout(15*time.Second)))
	if jti := text("jti"); jti == firstJTI || jti == "" {
		t.Fatalf("the access token was not replaced (jti %q)", jti)
	}
	if g := groups(); !slices.Equal(g, []string{"articles.writers", "editors", "staff"}) {
		t.Fatalf("groups after renewal %v", g)
	}
	logout(t, ctx, spa.URL+"/")

	// The single sign-on session ended with the logout: Pasee asks again.
	// GitHub this time: Pasee, the provider's consent page, Pasee, back to
	// the app with a code.
	do("log in with GitHub",
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-kisee")),
		chromedp.Click(chromedp.CSS(`form:has(input[name=idp][value=github]) button`)),
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
	if loc := location(); loc != spa.URL+"/" {
		t.Fatalf("the one-time code stayed in the address bar: %s", loc)
	}
	if q := github.AuthorizeRequests()[0]; q.Get("code_challenge_method") != "S256" {
		t.Fatalf("no PKCE towards the provider: %v", q)
	}

	// A reload forgets the tokens, not Pasee's session: logging in again
	// asks nothing.
	do("log in again within the single sign-on session",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("login-button")),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("session")),
	)
	if user := text("user"); user != "github-583231" {
		t.Fatalf("user after single sign-on %q", user)
	}
	logout(t, ctx, spa.URL+"/")

	// Declining at the provider brings the user back to the app with
	// access_denied, shown; the address bar is clean again.
	do("decline at GitHub",
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.CSS(`form:has(input[name=idp][value=github]) button`)),
		chromedp.Click(chromedp.CSS(`form:has(input[name=idp][value=github]) button`)),
		chromedp.WaitVisible(chromedp.ID("deny")),
		chromedp.Click(chromedp.ID("deny")),
	)
	if !waitUntil(ctx, `location.href === `+jsString(spa.URL+"/")+` && document.getElementById("error").textContent.startsWith("Access denied")`, 10*time.Second) {
		t.Fatalf("declining at GitHub: %s", whereAmI(ctx))
	}
	t.Logf("browser test took %s", time.Since(started).Round(time.Millisecond))
}

// logout clicks the app's logout button, confirms on Pasee's page when
// Pasee asks, and waits for the app's login button.
func logout(t *testing.T, ctx context.Context, app string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatalf("log out: %v", err)
	}
	atApp := `location.href.startsWith(` + jsString(app) + `) && !!document.getElementById("login-button") && !document.getElementById("login").hidden`
	confirm := `form[action$='/oidc/logout'] button`
	if !waitUntil(ctx, atApp+` || !!document.querySelector("`+confirm+`")`, 10*time.Second) {
		t.Fatalf("log out: neither back at the app nor asked to confirm (page error %q)", pageError(ctx))
	}
	if !waitUntil(ctx, atApp, 0) {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(confirm))); err != nil {
			t.Fatalf("confirm the logout at Pasee: %v", err)
		}
		if !waitUntil(ctx, atApp, 10*time.Second) {
			t.Fatalf("after confirming the logout, not back at the app (page error %q)", pageError(ctx))
		}
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != app {
		t.Fatalf("after logout the app is at %s", loc)
	}
}

// waitUntil evaluates cond until it is true or within has passed (once
// when within is 0), across page loads: an evaluation cut short by a
// navigation is tried again.
func waitUntil(ctx context.Context, cond string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// whereAmI is the browser's address and the start of the page's text,
// for failure messages.
func whereAmI(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 600)`))
	return s
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
