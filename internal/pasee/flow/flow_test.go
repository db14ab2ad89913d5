package flow_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/pkg/token"
)

// forEachStore runs f on SQLite and on PostgreSQL.
func forEachStore(t *testing.T, f func(t *testing.T, kind paseetest.Store)) {
	for _, s := range paseetest.Stores {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			f(t, s)
		})
	}
}

// redeem posts a one-time code (and optional verifier) to inst.
func (inst *instance) redeem(t *testing.T, code string, verifier ...string) *Response {
	t.Helper()
	body := map[string]string{"code": code}
	if len(verifier) > 0 {
		body["code_verifier"] = verifier[0]
	}
	return Do(t, "POST", inst.URL+"/tokens/?grant=code", body)
}

// access verifies an access token of inst.
func (inst *instance) access(t *testing.T, raw string) *token.Claims {
	t.Helper()
	c, err := token.NewVerifier(token.NewStaticKeySet(inst.Key.Public()), token.WithTypes(token.TypeAccess), token.WithIssuer(inst.Public)).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	return c
}

func TestLoginThroughEachKindOfProvider(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind paseetest.Store) {
		e := newEnv(t, kind)
		for _, c := range []struct {
			idp, user, claim, value string
		}{
			{"github", "github-583231", "login", "octocat"},             // numeric id, never the login
			{"twitter", "twitter-2244994945", "username", "TwitterDev"}, // data.id
			{"corp", "corp-248289761001", "email", "jane@example.com"},  // id_token sub
		} {
			t.Run(c.idp, func(t *testing.T) {
				appState := "xyz ✓&/?=" + c.idp // returned unchanged, whatever it holds
				back := e.pasee.login(t, c.idp, appState)
				if back.Get("state") != appState || back.Get("code") == "" || len(back) != 2 {
					t.Fatalf("app got %v", back)
				}
				r := e.pasee.redeem(t, back.Get("code")).WantStatus(t, 201)
				if r.Header.Get("Cache-Control") != "no-store" || r.JSON["token_type"] != "Bearer" || r.JSON["refresh_token"] == nil {
					t.Fatalf("pair answer %s", r.Body)
				}
				claims := e.pasee.access(t, r.JSON["access_token"].(string))
				if claims.Subject != c.user || claims.Extra[c.claim] != c.value || claims.Extra["idp"] != c.idp {
					t.Fatalf("access token claims %+v", claims)
				}
				// The refresh token works like any other.
				Do(t, "POST", e.pasee.URL+"/tokens/?refresh", nil, Bearer(r.JSON["refresh_token"].(string))...).WantStatus(t, 201)
			})
		}
		// Every provider saw PKCE S256 and Pasee's callback; the OIDC one a nonce.
		for _, s := range []*oauthtest.Server{e.github, e.twitter, e.corp} {
			q := s.AuthorizeRequests()[0]
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || !strings.HasPrefix(q.Get("redirect_uri"), e.pasee.Public+"/tokens/?idp=") {
				t.Fatalf("authorization request %v", q)
			}
			if q.Get("state") == "" || strings.Contains(q.Get("state"), "xyz") {
				t.Fatal("the provider must get Pasee's own state, not the app's")
			}
		}
		if e.corp.AuthorizeRequests()[0].Get("nonce") == "" {
			t.Fatal("no nonce sent to the OIDC provider")
		}
		if logs := e.pasee.logs.String(); strings.Contains(logs, e.github.ClientSecret()) {
			t.Fatal("the client secret is in the logs")
		}
	})
}

func TestWithoutRedirectURITheCallbackAnswersThePair(t *testing.T) {
	e := newEnv(t, paseetest.SQLite)
	r := e.pasee.callback(t, atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}})))
	if r.StatusCode != 201 || !strings.Contains(r.Body, `"access_token"`) || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("callback: %d %s", r.StatusCode, r.Body)
	}
}

func TestUserDenial(t *testing.T) {
	e := newEnv(t, paseetest.SQLite)
	e.github.SetDeny(true)
	t.Run("back to the app", func(t *testing.T) {
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}, "state": {"s1"}}))
		back := e.pasee.callback(t, cb).wantRedirect(t)
		if back.Scheme+"://"+back.Host+back.Path != appCallback || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != "s1" || back.Query().Has("code") {
			t.Fatalf("app got %s", back)
		}
	})
	t.Run("without redirect_uri", func(t *testing.T) {
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}}))
		e.pasee.callback(t, cb).wantProblem(t, 403, "Access denied")
	})
}

func TestProviderFailures(t *testing.T) {
	t.Run("oauth2 provider down at the callback", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
		e.github.Close()
		e.pasee.callback(t, cb).wantProblem(t, 503, "github not responding")
	})
	t.Run("oidc provider down at the start", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		e.corp.Close()
		get(t, e.pasee.URL+"/tokens/?idp=corp&redirect_uri="+url.QueryEscape(appCallback)).wantProblem(t, 503, "corp not responding")
	})
	t.Run("unusable user API answer", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		e.github.SetAnswer("/userinfo", 200, `{"login": "octocat"}`)
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
		e.pasee.callback(t, cb).wantProblem(t, 502, "Bad answer from github")
	})
	t.Run("id_token for another audience", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		e.corp.SetIDTokenHook(func(c *token.Claims) { c.Audience = []string{"someone-else"} })
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"corp"}, "redirect_uri": {appCallback}}))
		r := e.pasee.callback(t, cb)
		r.wantProblem(t, 502, "Bad answer from corp")
		if !strings.Contains(r.Body, "audience") {
			t.Fatalf("the detail does not say what is wrong: %s", r.Body)
		}
	})
	t.Run("provider refuses the authorization request", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		state := e.pasee.begin(t, url.Values{"idp": {"github"}}).Query().Get("state")
		get(t, e.pasee.URL+"/tokens/?idp=github&error=invalid_scope&state="+url.QueryEscape(state)).wantProblem(t, 502, "Bad answer from github")
	})
	t.Run("PKCE verifier mismatch at the provider", func(t *testing.T) {
		e := newEnv(t, paseetest.SQLite)
		cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
		// Pasee's stored verifier no longer matches the challenge it sent.
		db, err := sqldb.OpenSQLite(strings.TrimPrefix(e.storage, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE pasee_flow_states SET verifier = 'a-verifier-of-another-login-0123456789-abcdef'`); err != nil {
			t.Fatal(err)
		}
		r := e.pasee.callback(t, cb)
		r.wantProblem(t, 403, "Can not authenticate on github")
		if !strings.Contains(r.Body, "PKCE") || strings.Contains(r.Body, "a-verifier-of-another") {
			t.Fatalf("the problem must name PKCE and not show the verifier: %s", r.Body)
		}
	})
}

func TestStateIsSignedSingleUseAndExpiring(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind paseetest.Store) {
		e := newEnv(t, kind)
		t.Run("replayed", func(t *testing.T) {
			cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
			e.pasee.callback(t, cb).wantRedirect(t)
			e.pasee.callback(t, cb).wantProblem(t, 400, flow.TitleStateUsed)
			// Even with a fresh code from the provider.
			fresh := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}}))
			q := fresh.Query()
			q.Set("state", cb.Query().Get("state"))
			get(t, e.pasee.URL+"/tokens/?"+q.Encode()).wantProblem(t, 400, flow.TitleStateUsed)
		})
		t.Run("expired", func(t *testing.T) {
			cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
			e.clock.Advance(flow.DefaultStateTTL + time.Second)
			defer e.clock.Advance(-flow.DefaultStateTTL - time.Second)
			e.pasee.callback(t, cb).wantProblem(t, 400, flow.TitleStateExpired)
		})
		t.Run("forged", func(t *testing.T) {
			other, _ := token.GenerateKey(token.ES256)
			c := token.Claims{Issuer: e.pasee.Public, ID: "whatever", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}
			c.Set("idp", "github")
			forged, _ := token.NewSigner(other).Sign(flow.StateType, c)
			get(t, e.pasee.URL+"/tokens/?idp=github&code=abc&state="+forged).wantProblem(t, 400, flow.TitleInvalidState)
			get(t, e.pasee.URL+"/tokens/?idp=github&code=abc&state=not-a-token").wantProblem(t, 400, flow.TitleInvalidState)
			// A Pasee access token is no state either.
			c.Subject = "github-1"
			at, _ := token.NewSigner(e.key).Sign(token.TypeAccess, c)
			get(t, e.pasee.URL+"/tokens/?idp=github&code=abc&state="+at).wantProblem(t, 400, flow.TitleInvalidState)
		})
		t.Run("empty or missing", func(t *testing.T) {
			// A callback whose state was lost is broken: 400, not a new
			// login (a 302 to the provider).
			for _, q := range []string{"code=abc&state=", "code=abc", "error=access_denied&state=", "error=access_denied"} {
				get(t, e.pasee.URL+"/tokens/?idp=github&"+q).wantProblem(t, 400, flow.TitleInvalidState)
			}
		})
		t.Run("issued for another provider", func(t *testing.T) {
			cb := atProvider(t, e.pasee.begin(t, url.Values{"idp": {"github"}, "redirect_uri": {appCallback}}))
			q := cb.Query()
			q.Set("idp", "twitter")
			get(t, e.pasee.URL+"/tokens/?"+q.Encode()).wantProblem(t, 400, flow.TitleInvalidState)
		})
	})
}

func TestOneTimeCodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind paseetest.Store) {
		e := newEnv(t, kind)
		t.Run("replayed code revokes the session it opened", func(t *testing.T) {
			code := e.pasee.login(t, "github", "").Get("code")
			first := e.pasee.redeem(t, code).WantStatus(t, 201)
			e.pasee.redeem(t, code).WantProblem(t, 400, flow.TitleCodeUsed)
			Do(t, "POST", e.pasee.URL+"/tokens/?refresh", nil, Bearer(first.JSON["refresh_token"].(string))...).WantStatus(t, 401)
		})
		t.Run("expired", func(t *testing.T) {
			code := e.pasee.login(t, "github", "").Get("code")
			e.clock.Advance(flow.DefaultCodeTTL + time.Second)
			defer e.clock.Advance(-flow.DefaultCodeTTL - time.Second)
			e.pasee.redeem(t, code).WantProblem(t, 400, flow.TitleCodeExpired)
		})
		t.Run("within 60 s", func(t *testing.T) {
			code := e.pasee.login(t, "github", "").Get("code")
			e.clock.Advance(flow.DefaultCodeTTL - 2*time.Second)
			defer e.clock.Advance(-flow.DefaultCodeTTL + 2*time.Second)
			e.pasee.redeem(t, code).WantStatus(t, 201)
		})
		t.Run("unknown or missing", func(t *testing.T) {
			e.pasee.redeem(t, "made-up").WantProblem(t, 400, flow.TitleInvalidCode)
			Do(t, "POST", e.pasee.URL+"/tokens/?grant=code", map[string]string{}).WantProblem(t, 400, flow.TitleMissingCode)
		})
	})
}

func TestAppPKCEBindsTheCodeToTheApp(t *testing.T) {
	e := newEnv(t, paseetest.SQLite)
	verifier := "the-apps-own-verifier-0123456789-abcdefghijklmnop"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	loginWith := func() string {
		q := url.Values{"idp": {"github"}, "redirect_uri": {appCallback}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		return e.pasee.callback(t, atProvider(t, e.pasee.begin(t, q))).wantRedirect(t).Query().Get("code")
	}
	e.pasee.redeem(t, loginWith()).WantProblem(t, 400, flow.TitleInvalidVerifier)
	e.pasee.redeem(t, loginWith(), "another-verifier-0123456789-abcdefghijklmnopqrs").WantProblem(t, 400, flow.TitleInvalidVerifier)
	e.pasee.redeem(t, loginWith(), verifier).WantStatus(t, 201)
	for _, bad := range []string{"code_challenge_method=plain&code_challenge=" + challenge, "code_challenge=short&code_challenge_method=S256", "code_challenge_method=S256"} {
		get(t, e.pasee.URL+"/tokens/?idp=github&redirect_uri="+url.QueryEscape(appCallback)+"&"+bad).wantProblem(t, 400, flow.TitleInvalidRequest)
	}
}

func TestOpenRedirectsAreRefused(t *testing.T) {
	e := newEnv(t, paseetest.SQLite)
	for _, uri := range []string{
		"https://evil.example/callback",                      // another host
		"https://app.example.com/other",                      // same host, another path
		"https://app.example.com/callback/",                  // trailing slash
		"https://app.example.com/callback?next=https://evil", // extra query
		"https://app.example.com/callback#frag",              // fragment
		"https://app.example.com@evil.example/callback",      // userinfo@host trick
		"https://evil.example/https://app.example.com/callback",
		"https://app.example.com.evil.example/callback", // suffix trick
		"http://app.example.com/callback",               // scheme downgrade
		"https://APP.example.com/callback",              // case: compared as strings
		"https://app.example.com:443/callback",          // explicit port
		"https://app.example.com/%63allback",            // percent-encoded
		"//evil.example/callback",                       // scheme-relative
		"/callback",                                     // relative
		"javascript:alert(1)",
	} {
		t.Run(uri, func(t *testing.T) {
			get(t, e.pasee.URL+"/tokens/?idp=github&state=s&redirect_uri="+url.QueryEscape(uri)).wantProblem(t, 400, flow.TitleRedirectNotAllowed)
		})
	}
	t.Run("repeated redirect_uri", func(t *testing.T) {
		get(t, e.pasee.URL+"/tokens/?idp=github&redirect_uri="+url.QueryEscape(appCallback)+"&redirect_uri="+url.QueryEscape("https://evil.example/")).
			wantProblem(t, 400, flow.TitleInvalidRequest)
	})
	if n := len(e.github.AuthorizeRequests()); n != 0 {
		t.Fatalf("the provider was contacted %d times for refused redirect URIs", n)
	}
	// A registered URI with its own query gets the code appended.
	q := url.Values{"idp": {"github"}, "redirect_uri": {"http://127.0.0.1:9999/spa/?from=pasee"}, "state": {"s"}}
	back := e.pasee.callback(t, atProvider(t, e.pasee.begin(t, q))).wantRedirect(t)
	if back.Query().Get("from") != "pasee" || back.Query().Get("code") == "" || back.Path != "/spa/" {
		t.Fatalf("redirect %s", back)
	}
}

func TestCORSForBrowserApps(t *testing.T) {
	e := newEnv(t, paseetest.SQLite)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.pasee.URL+"/tokens/?grant=code", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight(appOrigin)
	if ok.StatusCode != 204 || ok.Header.Get("Access-Control-Allow-Origin") != appOrigin ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(strings.ToLower(ok.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight from the app: %d %v", ok.StatusCode, ok.Header)
	}
	if bad := preflight("https://evil.example"); bad.StatusCode != 403 || bad.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", bad.StatusCode, bad.Header)
	}
	code := e.pasee.login(t, "github", "").Get("code")
	r := Do(t, "POST", e.pasee.URL+"/tokens/?grant=code", map[string]string{"code": code}, "Origin", appOrigin, "Content-Type", "application/json").WantStatus(t, 201)
	if r.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("the pair answer lacks CORS headers: %v", r.Header)
	}
	r = Do(t, "POST", e.pasee.URL+"/tokens/?grant=code", map[string]string{"code": "x"}, "Origin", "https://evil.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("another origin got CORS headers")
	}
}

func TestTwoInstancesShareOneDatabase(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind paseetest.Store) {
		e := newEnv(t, kind)
		a, b := e.pasee, e.start()
		// Started on A, called back on B, redeemed on A.
		cb := atProvider(t, a.begin(t, url.Values{"idp": {"corp"}, "redirect_uri": {appCallback}, "state": {"app-state"}}))
		back := b.callback(t, cb).wantRedirect(t)
		if back.Query().Get("state") != "app-state" {
			t.Fatalf("app got %s", back)
		}
		// The state is spent for A too.
		a.callback(t, cb).wantProblem(t, 400, flow.TitleStateUsed)
		code := back.Query().Get("code")
		r := a.redeem(t, code).WantStatus(t, 201)
		if sub := a.access(t, r.JSON["access_token"].(string)).Subject; sub != "corp-248289761001" {
			t.Fatalf("subject %q", sub)
		}
		// And the code for B.
		b.redeem(t, code).WantProblem(t, 400, flow.TitleCodeUsed)
	})
}

// The storage hands out a state or a code once, even to concurrent takers.
func TestStorageIsSingleUseUnderConcurrency(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind paseetest.Store) {
		url := kind.URL(t)
		if err := migrateOnly(t, url); err != nil {
			t.Fatal(err)
		}
		stores := make([]*flow.SQLStorage, 2)
		for i := range stores {
			s, err := flow.OpenStorage(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			stores[i] = s
		}
		ctx := context.Background()
		now := time.Now()
		if err := stores[0].SaveState(ctx, flow.State{ID: "st", IDP: "corp", Verifier: "v", Nonce: "n", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := stores[0].SaveCode(ctx, flow.Code{Hash: "h", IDP: "corp", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		const n = 16
		results := make(chan error, 2*n)
		for i := range n {
			s := stores[i%2]
			go func() { _, err := s.TakeState(ctx, "st", time.Now()); results <- err }()
			go func() { _, err := s.SpendCode(ctx, "h", time.Now()); results <- err }()
		}
		wins := 0
		for range 2 * n {
			switch err := <-results; {
			case err == nil:
				wins++
			case err != flow.ErrUsed:
				t.Fatalf("unexpected error %v", err)
			}
		}
		if wins != 2 {
			t.Fatalf("%d takers won, want one per value", wins)
		}
		if _, err := stores[1].TakeState(ctx, "unknown", now); err != flow.ErrNotFound {
			t.Fatalf("unknown state: %v", err)
		}
		if err := stores[1].SaveState(ctx, flow.State{ID: "old", IDP: "corp", CreatedAt: now, ExpiresAt: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if _, err := stores[0].TakeState(ctx, "old", now.Add(2*time.Second)); err != flow.ErrExpired {
			t.Fatalf("expired state: %v", err)
		}
	})
}

// migrateOnly applies Pasee's migrations to the database at url.
func migrateOnly(t *testing.T, url string) error {
	t.Helper()
	st, err := store.Open(context.Background(), url, nil, true)
	if err != nil {
		return err
	}
	return st.Close()
}
