package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

func nowUTC() time.Time { return time.Now().UTC() }

// A login through Kisee yields a pair exactly as SPEC describes it.
func TestLoginThroughKisee(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s := start(t, store, "")
		s.addToGroups(t, "kisee-alice", "staff", "articles.writers")
		for _, field := range []string{"login", "username"} {
			r := Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", map[string]string{field: "alice", "password": alicePassword}).WantStatus(t, 201)
			if r.Header.Get("Cache-Control") != "no-store" || r.JSON["token_type"] != "Bearer" || r.JSON["expires_in"] != float64(900) {
				t.Fatalf("pair response: %v %s", r.Header, r.Body)
			}
			at := s.claims(t, r.JSON["access_token"].(string), token.TypeAccess)
			groups, _ := at.Strings("groups")
			if at.Subject != "kisee-alice" || at.Issuer != s.pasee.URL || !slices.Equal(groups, []string{"articles.writers", "staff"}) {
				t.Fatalf("access claims %+v", at)
			}
			if idp, _ := at.String("idp"); idp != "kisee" || at.Has("refresh_token") || at.ID == "" {
				t.Fatalf("access claims %+v", at)
			}
			if email, _ := at.String("email"); email != "alice@example.com" {
				t.Fatalf("whitelisted email claim lost: %+v", at.Extra)
			}
			rt := s.claims(t, r.JSON["refresh_token"].(string), token.TypeRefresh)
			if !rt.Bool("refresh_token") || rt.Has("groups") || rt.Has("email") || rt.Subject != "kisee-alice" {
				t.Fatalf("refresh claims %+v", rt)
			}
		}
	})
}

// Only whitelisted provider claims reach Pasee tokens.
func TestClaimWhitelist(t *testing.T) {
	k := startKiseeWithClaims(t)
	p := paseetest.Start(t, paseetest.SQLite, "[[identity_providers]]\nname = \"corp\"\nprotocol = \"kisee\"\nendpoint = \""+k+"\"\n[identity_providers.settings]\nclaims = [\"department\"]\n")
	r := Do(t, "POST", p.URL+"/tokens/?idp=corp", map[string]string{"login": "carol", "password": "carol password"}).WantStatus(t, 201)
	c, err := token.NewVerifier(token.NewStaticKeySet(p.Key.Public()), token.WithTypes(token.TypeAccess)).Verify(context.Background(), r.JSON["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := c.String("department"); d != "research" || c.Has("email") || c.Has("secret_level") {
		t.Fatalf("claims %+v", c.Extra)
	}
	if c.Subject != "corp-carol" {
		t.Fatalf("sub %q", c.Subject)
	}
}

func startKiseeWithClaims(t *testing.T) string {
	t.Helper()
	k := kiseeStart(t, `[identity_backend]
class = "test"
[[identity_backend.options.users]]
username = "carol"
password = "carol password"
email = "carol@example.com"
claims = { department = "research", secret_level = 3 }
`)
	return k
}

func TestLoginWithProviderToken(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	kr := Do(t, "POST", s.kisee.URL+"/jwt/", map[string]string{"username": "bob", "password": bobPassword}).WantStatus(t, 201)
	kt := kr.JSON["tokens"].([]any)[0].(string)
	r := Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", nil, Bearer(kt)...).WantStatus(t, 201)
	if c := s.claims(t, r.JSON["access_token"].(string), token.TypeAccess); c.Subject != "kisee-bob" {
		t.Fatalf("sub %q", c.Subject)
	}
	// Once the owner revokes the Kisee token, Pasee refuses it.
	jti := strings.TrimPrefix(kr.Header.Get("Location"), "/jwt/")
	Do(t, "DELETE", s.kisee.URL+"/jwt/"+jti, nil, Bearer(kt)...).WantStatus(t, 204)
	Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", nil, Bearer(kt)...).WantProblem(t, 403, "Can not authenticate on kisee")
	// A Pasee access token is not a Kisee token.
	pt := s.login(t, "bob", bobPassword).access
	Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", nil, Bearer(pt)...).WantProblem(t, 403, "Can not authenticate on kisee")
}

func TestLoginRefusals(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	u := s.pasee.URL + "/tokens/"
	Do(t, "POST", u, `{"login":"alice","password":"x"}`).WantProblem(t, 400, "Identity provider not provided in query string")
	Do(t, "POST", u+"?idp=github", `{"login":"alice","password":"x"}`).WantProblem(t, 400, "Identity provider not implemented")
	Do(t, "POST", u+"?idp=kisee", `{"login":"alice","password":"wrong"}`).WantProblem(t, 403, "Can not authenticate on kisee")
	Do(t, "POST", u+"?idp=kisee", `{"login":"nobody","password":"wrong"}`).WantProblem(t, 403, "Can not authenticate on kisee")
	Do(t, "POST", u+"?idp=kisee", `{"login":"alice"}`).WantProblem(t, 422, "Missing login or password")
	Do(t, "POST", u+"?idp=kisee", `{"login":5,"password":"x"}`).WantProblem(t, 400, "Invalid JSON")
	Do(t, "POST", u+"?idp=kisee", `{"login":`).WantProblem(t, 400, "Invalid JSON")
	Do(t, "POST", u+"?idp=kisee", `{"login":"a","password":"`+strings.Repeat("x", 1<<20)+`"}`).WantProblem(t, 413, "Request body too large")
	Do(t, "POST", u+"?idp=kisee", nil, Bearer("garbage")...).WantProblem(t, 403, "Can not authenticate on kisee")
	Do(t, "POST", u+"?grant=password", `{}`).WantProblem(t, 400, "Grant not supported")
	Do(t, "GET", s.pasee.URL+"/health", nil).WantStatus(t, 200)
}

// Upstream failures: down → 503, garbage → 502, slow → 503 within the
// provider's timeout.
func TestProviderFailures(t *testing.T) {
	home := func(base string) string {
		return `{"api":{"title":"Identification Provider"},"resources":{"jwt":{"href":"` + base + `/jwt/"},"jwks":{"href":"` + base + `/jwks.json"}}}`
	}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte(home("")))
			return
		}
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"tokens": ["not.a.jwt"]}`))
	}))
	defer garbage.Close()
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	crash := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte(home("")))
			return
		}
		http.Error(w, "boom", 500)
	}))
	defer crash.Close()
	notHome := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`<html>hello</html>`)) }))
	defer notHome.Close()

	doc := ""
	for name, url := range map[string]string{"down": "http://127.0.0.1:1/", "garbage": garbage.URL, "slow": slow.URL, "crash": crash.URL, "nothome": notHome.URL} {
		doc += "[[identity_providers]]\nname = \"" + name + "\"\nprotocol = \"kisee\"\nendpoint = \"" + url + "\"\n[identity_providers.settings]\ntimeout = \"300ms\"\n"
	}
	p := paseetest.Start(t, paseetest.SQLite, doc)
	body := `{"login":"alice","password":"x"}`
	Do(t, "POST", p.URL+"/tokens/?idp=down", body).WantProblem(t, 503, "down not responding")
	Do(t, "POST", p.URL+"/tokens/?idp=crash", body).WantProblem(t, 503, "crash not responding")
	Do(t, "POST", p.URL+"/tokens/?idp=garbage", body).WantProblem(t, 502, "Bad answer from garbage")
	Do(t, "POST", p.URL+"/tokens/?idp=nothome", body).WantProblem(t, 502, "Bad answer from nothome")
	start := time.Now()
	Do(t, "POST", p.URL+"/tokens/?idp=slow", body).WantProblem(t, 503, "slow not responding")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a slow provider held the request %s despite a 300 ms timeout", d)
	}
	if strings.Contains(p.Logs(), `"x"`) {
		t.Fatal("password in logs")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s := start(t, store, "[jwt]\nrefresh_reuse_grace = \"0s\"\n")
		p := s.login(t, "alice", alicePassword)
		u := s.pasee.URL + "/tokens/?refresh"

		// An access token is not a refresh token, and the reverse.
		Do(t, "POST", u, nil, Bearer(p.access)...).WantProblem(t, 401, "Token is not a refresh token")
		Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(p.refresh)...).WantProblem(t, 401, "Invalid token")

		r := Do(t, "POST", u, nil, Bearer(p.refresh)...).WantStatus(t, 201)
		p2 := pair{r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)}
		if p2.refresh == p.refresh || s.claims(t, p2.refresh, token.TypeRefresh).ID == s.claims(t, p.refresh, token.TypeRefresh).ID {
			t.Fatal("refresh did not rotate the refresh token")
		}
		// Groups are re-read at each refresh.
		s.addToGroups(t, "kisee-alice", "articles")
		r = Do(t, "POST", u, nil, Bearer(p2.refresh)...).WantStatus(t, 201)
		p3 := pair{r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)}
		if g, _ := s.claims(t, p3.access, token.TypeAccess).Strings("groups"); !slices.Contains(g, "articles") {
			t.Fatalf("groups not re-read: %v", g)
		}
		// Presenting a spent token revokes the whole session, including
		// the live token descended from it.
		Do(t, "POST", u, nil, Bearer(p.refresh)...).WantProblem(t, 401, "Refresh token reused")
		Do(t, "POST", u, nil, Bearer(p3.refresh)...).WantProblem(t, 401, "Session revoked")
		// Other sessions of the user live on.
		other := s.login(t, "alice", alicePassword)
		Do(t, "POST", u, nil, Bearer(other.refresh)...).WantStatus(t, 201)
	})
}

func TestRefreshReuseGrace(t *testing.T) {
	s := start(t, paseetest.SQLite, "[jwt]\nrefresh_reuse_grace = \"1h\"\n")
	p := s.login(t, "alice", alicePassword)
	u := s.pasee.URL + "/tokens/?refresh"
	a := Do(t, "POST", u, nil, Bearer(p.refresh)...).WantStatus(t, 201)
	b := Do(t, "POST", u, nil, Bearer(p.refresh)...).WantStatus(t, 201)
	for _, f := range []struct{ field, typ string }{{"access_token", token.TypeAccess}, {"refresh_token", token.TypeRefresh}} {
		ca, cb := s.claims(t, a.JSON[f.field].(string), f.typ), s.claims(t, b.JSON[f.field].(string), f.typ)
		if ca.ID != cb.ID || !ca.ExpiresAt.Equal(cb.ExpiresAt) {
			t.Fatalf("%s: the replay within the grace window is not the same pair (%s vs %s)", f.field, ca.ID, cb.ID)
		}
	}
	// The replayed pair is the live one.
	Do(t, "POST", u, nil, Bearer(b.JSON["refresh_token"].(string))...).WantStatus(t, 201)
}

func TestLogoutAndIntrospection(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s := start(t, store, "")
		p := s.login(t, "bob", bobPassword)
		intro := func(tok string) map[string]any {
			return Do(t, "POST", s.pasee.URL+"/tokens/introspect", map[string]string{"token": tok}, paseetest.IntrospectionAuth()...).WantStatus(t, 200).JSON
		}
		if a := intro(p.access); a["active"] != true || a["sub"] != "kisee-bob" || a["token_type"] != "access_token" {
			t.Fatalf("introspect access: %v", a)
		}
		if a := intro(p.refresh); a["active"] != true || a["token_type"] != "refresh_token" {
			t.Fatalf("introspect refresh: %v", a)
		}
		if a := intro("garbage"); a["active"] != false || len(a) != 1 {
			t.Fatalf("introspect garbage: %v", a)
		}
		Do(t, "POST", s.pasee.URL+"/tokens/introspect", `{}`, paseetest.IntrospectionAuth()...).WantProblem(t, 400, "Missing token")
		// Anonymous callers, and wrong or public credentials, get 401.
		Do(t, "POST", s.pasee.URL+"/tokens/introspect", map[string]string{"token": p.access}).WantProblem(t, 401, "Client authentication required")
		Do(t, "POST", s.pasee.URL+"/tokens/introspect", map[string]string{"token": p.access}, "Authorization", "Basic cmVzb3VyY2Utc2VydmVyOndyb25n").
			WantProblem(t, 401, "Client authentication required")
		Do(t, "POST", s.pasee.URL+"/tokens/introspect", map[string]string{"token": p.access}, Bearer(p.access)...).WantProblem(t, 401, "Client authentication required")
		Do(t, "DELETE", s.pasee.URL+"/tokens/", nil, Bearer(p.access)...).WantProblem(t, 401, "Token is not a refresh token")
		Do(t, "DELETE", s.pasee.URL+"/tokens/", nil, Bearer(p.refresh)...).WantStatus(t, 204)
		Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(p.refresh)...).WantProblem(t, 401, "Session revoked")
		if a := intro(p.access); a["active"] != false {
			t.Fatalf("access token of a logged-out session is active: %v", a)
		}
		// And Pasee's own API refuses it at once.
		Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(p.access)...).WantProblem(t, 401, "Session revoked")
	})
}

func TestPublicKeyAndJWKS(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	r := Do(t, "GET", s.pasee.URL+"/public-key/", nil).WantStatus(t, 200)
	pub, err := token.ParsePublicKeyPEM([]byte(r.JSON["public_key"].(string)))
	if err != nil || !pub.Equal(s.pasee.Key.Public()) || r.JSON["algorithm"] != "ES256" {
		t.Fatalf("public key: %v %s", err, r.Body)
	}
	p := s.login(t, "alice", alicePassword)
	v := token.NewVerifier(token.NewRemoteKeySet(s.pasee.URL+"/jwks.json", token.RemoteOptions{}), token.WithTypes(token.TypeAccess))
	if _, err := v.Verify(context.Background(), p.access); err != nil {
		t.Fatalf("access token does not verify with /jwks.json: %v", err)
	}
}

// A Kisee identity token is not a Pasee access token, even if it reached
// Pasee somehow.
func TestKiseeTokenIsNotAnAccessToken(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	kr := Do(t, "POST", s.kisee.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).WantStatus(t, 201)
	Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(kr.JSON["tokens"].([]any)[0].(string))...).WantProblem(t, 401, "Invalid token")
	// Even signed with Pasee's own key, a "JWT"-typed token is refused.
	forged, _ := token.NewSigner(s.pasee.Key).Sign(token.TypeJWT, token.Claims{Issuer: s.pasee.URL, Subject: "kisee-alice", ExpiresAt: time.Now().Add(time.Hour)})
	Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(forged)...).WantProblem(t, 401, "Invalid token")
}

func TestGetTokensDescribesProviders(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	r := Do(t, "GET", s.pasee.URL+"/tokens/", nil).WantStatus(t, 200)
	var doc struct {
		Providers []struct{ Name, Protocol, Method, Href string } `json:"identity_providers"`
	}
	_ = json.Unmarshal(r.Body, &doc)
	if len(doc.Providers) != 1 || doc.Providers[0].Name != "kisee" || doc.Providers[0].Method != "POST" {
		t.Fatalf("GET /tokens/: %s", r.Body)
	}
}

func TestServesOpenAPI(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	r := Do(t, "GET", s.pasee.URL+"/openapi.yaml", nil).WantStatus(t, 200)
	if !strings.HasPrefix(string(r.Body), "openapi: 3.1.0") || !strings.Contains(string(r.Body), "Identification Manager") {
		t.Fatalf("GET /openapi.yaml: %.60s", r.Body)
	}
}

func TestJSONHome(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	r := Do(t, "GET", s.pasee.URL+"/", nil).WantStatus(t, 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/json-home" {
		t.Fatalf("Content-Type %q", ct)
	}
	if api, _ := r.JSON["api"].(map[string]any); api["title"] != "Identification Manager" {
		t.Fatalf("title %v", r.JSON["api"])
	}
	res, _ := r.JSON["resources"].(map[string]any)
	for _, name := range []string{"tokens", "groups", "users", "jwks"} {
		entry, _ := res[name].(map[string]any)
		if href, _ := entry["href"].(string); !strings.HasPrefix(href, s.pasee.URL+"/") {
			t.Errorf("resource %s: href %q is not an absolute URL on %s", name, href, s.pasee.URL)
		}
	}
	if ct := Do(t, "GET", s.pasee.URL+"/", nil, "Accept", "application/json").Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || strings.Contains(ct, "home") {
		t.Fatalf("Accept: application/json answered %q", ct)
	}
}
