package verify_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
)

// A service behind the middleware, with real tokens from a real Pasee:
// identity in the context, group checks exact and by subtree, and groups
// that follow Pasee's memberships at the next token.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.addToGroups(t, "kisee-alice", "articles.writers")
	s.addToGroups(t, "kisee-bob", "staff")
	svc := service(t, s.verifier(t, verify.Options{}))
	alice, aliceRefresh := s.login(t, "alice", alicePassword)
	bob, _ := s.login(t, "bob", bobPassword)

	r := Do(t, "GET", svc+"/me", nil, Bearer(alice)...).WantStatus(t, 200)
	if r.JSON["subject"] != "kisee-alice" || r.JSON["idp"] != "kisee" || r.JSON["sid"] == "" || r.JSON["same_in_request_context"] != true {
		t.Errorf("/me = %s", r.Body)
	}
	if g, _ := r.JSON["groups"].([]any); !reflect.DeepEqual(g, []any{"articles.writers"}) {
		t.Errorf("groups = %v, want [articles.writers]", r.JSON["groups"])
	}

	Do(t, "GET", svc+"/articles", nil, Bearer(alice)...).WantStatus(t, 200) // articles.writers is under articles
	Do(t, "GET", svc+"/admin", nil, Bearer(bob)...).WantStatus(t, 200)
	for _, c := range []struct{ path, tok string }{{"/admin", alice}, {"/articles", bob}, {"/both", alice}, {"/both", bob}} {
		r := Do(t, "GET", svc+c.path, nil, Bearer(c.tok)...)
		r.WantProblem(t, 403, "Missing group")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope"` {
			t.Errorf("%s: WWW-Authenticate = %q", c.path, got)
		}
	}

	// Groups travel in the token: alice's new membership shows in the
	// access token of her next refresh, not in the one she holds.
	s.addToGroups(t, "kisee-alice", "staff")
	Do(t, "GET", svc+"/admin", nil, Bearer(alice)...).WantStatus(t, 403)
	alice, _ = s.refresh(t, aliceRefresh)
	Do(t, "GET", svc+"/admin", nil, Bearer(alice)...).WantStatus(t, 200)
	Do(t, "GET", svc+"/both", nil, Bearer(alice)...).WantStatus(t, 200)

	// Optional authentication: anonymous callers pass, bad tokens do not,
	// and a group check after it asks anonymous callers for a token.
	if r := Do(t, "GET", svc+"/maybe", nil).WantStatus(t, 200); r.JSON["anonymous"] != true {
		t.Errorf("/maybe anonymous = %s", r.Body)
	}
	if r := Do(t, "GET", svc+"/maybe", nil, Bearer(bob)...).WantStatus(t, 200); r.JSON["subject"] != "kisee-bob" {
		t.Errorf("/maybe with a token = %s", r.Body)
	}
	wantRefused(t, Do(t, "GET", svc+"/maybe", nil, Bearer("garbage")...), "Invalid token")
	wantRefused(t, Do(t, "GET", svc+"/maybe/articles", nil), "Missing token")
	Do(t, "GET", svc+"/maybe/articles", nil, Bearer(alice)...).WantStatus(t, 200)
}

// The refusals are the documents Pasee itself writes for the same token:
// same status, headers and body.
func TestRefusalsMatchPasee(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	svc := service(t, s.verifier(t, verify.Options{}))
	_, refresh := s.login(t, "alice", alicePassword)
	kiseeToken := s.kiseeToken(t, "alice", alicePassword)
	for name, headers := range map[string][]string{
		"missing":        nil,
		"not bearer":     {"Authorization", "Basic YWxpY2U6eA=="},
		"malformed":      Bearer("not.a-token"),
		"refresh token":  Bearer(refresh),
		"Kisee identity": Bearer(kiseeToken),
	} {
		t.Run(name, func(t *testing.T) {
			ours := Do(t, "GET", svc+"/me", nil, headers...)
			theirs := Do(t, "GET", s.pasee.URL+"/groups/", nil, headers...)
			theirs.WantStatus(t, 401)
			wantRefused(t, ours, theirs.JSON["title"].(string))
			if !maps.EqualFunc(ours.JSON, theirs.JSON, func(a, b any) bool { return reflect.DeepEqual(a, b) }) {
				t.Errorf("our document %s\nPasee's      %s", ours.Body, theirs.Body)
			}
			for _, h := range []string{"WWW-Authenticate", "Content-Type"} {
				if ours.Header.Get(h) != theirs.Header.Get(h) {
					t.Errorf("%s: ours %q, Pasee's %q", h, ours.Header.Get(h), theirs.Header.Get(h))
				}
			}
		})
	}
}

// Tokens Pasee did not issue as access tokens are refused, for the right
// reason, whether forged, expired, of another type or another issuer.
func TestRefusedTokens(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	key := s.pasee.Key // Pasee's own signing key: what an insider would have
	iss := s.pasee.URL
	now := time.Now()
	v := s.verifier(t, verify.Options{})
	svc := service(t, v)
	pub, _ := key.Public().MarshalPEM()
	header := func(alg, typ string) map[string]any {
		return map[string]any{"alg": alg, "typ": typ, "kid": key.KeyID()}
	}
	withClaim := func(name string, value any) token.Claims {
		c := accessClaims(iss, "kisee-alice", now, "staff")
		c.Set(name, value)
		return c
	}
	expired := accessClaims(iss, "kisee-alice", now.Add(-time.Hour), "staff")
	noSub := accessClaims(iss, "", now, "staff")
	future := accessClaims(iss, "kisee-alice", now, "staff")
	future.NotBefore = now.Add(time.Hour)
	cases := []struct {
		name string
		raw  string
		why  error
	}{
		{"forged with Pasee's kid", forge(t, header("ES256", "at+jwt"), accessClaims(iss, "kisee-alice", now, "staff")), token.ErrSignature},
		{"alg none", encode(t, header("none", "at+jwt"), accessClaims(iss, "kisee-alice", now, "staff")) + ".", token.ErrAlgorithm},
		{"HS256 keyed with the public key", hmacWith(t, pub, header("HS256", "at+jwt"), accessClaims(iss, "kisee-alice", now, "staff")), token.ErrAlgorithm},
		{"expired", sign(t, key, token.TypeAccess, expired), token.ErrExpired},
		{"not yet valid", sign(t, key, token.TypeAccess, future), token.ErrNotYetValid},
		{"wrong issuer", sign(t, key, token.TypeAccess, accessClaims("https://other.example.com", "kisee-alice", now, "staff")), token.ErrIssuer},
		{"identity token type", sign(t, key, token.TypeJWT, accessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"refresh token type", sign(t, key, token.TypeRefresh, accessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"reset token type", sign(t, key, token.TypeReset, accessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"refresh claim in an access token", sign(t, key, token.TypeAccess, withClaim("refresh_token", true)), token.ErrType},
		{"no subject", sign(t, key, token.TypeAccess, noSub), token.ErrMalformed},
		{"groups not a list", sign(t, key, token.TypeAccess, withClaim("groups", "staff")), token.ErrMalformed},
		{"groups not strings", sign(t, key, token.TypeAccess, withClaim("groups", []any{"staff", 1})), token.ErrMalformed},
		{"signed by another key", sign(t, mustKey(t, token.ES256), token.TypeAccess, accessClaims(iss, "kisee-alice", now, "staff")), token.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), c.raw)
			if !errors.Is(err, c.why) {
				t.Fatalf("Verify: %v, want %v", err, c.why)
			}
			r := Do(t, "GET", svc+"/admin", nil, Bearer(c.raw)...)
			wantRefused(t, r, "Invalid token")
			if r.JSON["detail"] != err.Error() {
				t.Errorf("detail %q, want %q", r.JSON["detail"], err.Error())
			}
		})
	}

	// The same key and claims, done right, pass: the cases above fail for
	// their own reason only.
	good := sign(t, key, token.TypeAccess, accessClaims(iss, "kisee-alice", now, "staff"))
	Do(t, "GET", svc+"/admin", nil, Bearer(good)...).WantStatus(t, 200)

	// An audience, when required, must be in the token.
	aud := s.verifier(t, verify.Options{Audience: "articles-api"})
	if _, err := aud.Verify(context.Background(), good); !errors.Is(err, token.ErrAudience) {
		t.Errorf("without aud: %v, want ErrAudience", err)
	}
	withAud := accessClaims(iss, "kisee-alice", now)
	withAud.Audience = []string{"articles-api"}
	if _, err := aud.Verify(context.Background(), sign(t, key, token.TypeAccess, withAud)); err != nil {
		t.Errorf("with aud: %v", err)
	}
}

// Keys from a JWK Set: a rotated key is picked up at its first token,
// forged key ids do not make the verifier hammer the issuer, and a retired
// key stops working once the cache expires.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	old, next := mustKey(t, token.ES256), mustKey(t, token.EdDSA)
	set := newJWKS(t, old.Public())
	clk := &clock{now: time.Now()}
	v, err := verify.New(context.Background(), verify.Options{
		JWKSURL: set.URL, Issuer: iss, Now: clk.Now, MinRefresh: time.Minute, MaxAge: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	check := func(key *token.PrivateKey, want int) {
		t.Helper()
		raw := sign(t, key, token.TypeAccess, accessClaims(iss, "kisee-alice", clk.Now()))
		Do(t, "GET", svc+"/me", nil, Bearer(raw)...).WantStatus(t, want)
	}
	if set.fetches.Load() != 0 {
		t.Fatal("fetched before the first token")
	}
	check(old, 200)
	check(old, 200)
	if n := set.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for two tokens, want 1 (cached)", n)
	}

	// Pasee publishes the next key, then signs with it.
	set.set(t, next.Public(), old.Public())
	clk.Add(2 * time.Minute)
	check(next, 200)
	if n := set.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2 (refetch on unknown kid)", n)
	}
	check(old, 200) // still published

	// Tokens naming unknown kids right after a fetch do not cause fetches.
	for range 5 {
		check(mustKey(t, token.ES256), 401)
	}
	if n := set.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after forged kids, want 2 (rate-limited)", n)
	}

	// The old key is retired: accepted while the cache lives, refused after.
	set.set(t, next.Public())
	check(old, 200)
	clk.Add(time.Hour + time.Minute)
	check(old, 401)
	check(next, 200)
	if n := set.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after expiry, want 3", n)
	}

	// Refresh fetches at once.
	if err := v.Refresh(context.Background()); err != nil || set.fetches.Load() != 4 {
		t.Fatalf("Refresh: %v, %d fetches", err, set.fetches.Load())
	}
}

// When Pasee's keys cannot be fetched, the token cannot be checked: 503,
// not 401, and the verifier says why.
func TestKeySetUnavailable(t *testing.T) {
	t.Parallel()
	key := mustKey(t, token.ES256)
	set := newJWKS(t, key.Public())
	set.fail.Store(true)
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, key, token.TypeAccess, accessClaims("https://auth.example.com", "kisee-alice", time.Now()))
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, token.ErrKeySetUnavailable) {
		t.Fatalf("Verify: %v, want ErrKeySetUnavailable", err)
	}
	r := Do(t, "GET", service(t, v)+"/me", nil, Bearer(raw)...)
	r.WantProblem(t, 503, "Service unavailable")
	if strings.Contains(string(r.Body), set.URL) {
		t.Errorf("the 503 shows the cause: %s", r.Body)
	}

	// Prefetch turns the same failure into an error at start.
	if _, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "x", Prefetch: true}); !errors.Is(err, token.ErrKeySetUnavailable) {
		t.Errorf("Prefetch of a failing set: %v", err)
	}
	set.fail.Store(false)
	if _, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "x", Prefetch: true}); err != nil {
		t.Errorf("Prefetch: %v", err)
	}
}

// Pinned PEM keys: Pasee's published public key verifies its real tokens.
func TestPEMKeys(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	r := Do(t, "GET", s.pasee.URL+"/public-key/", nil).WantStatus(t, 200)
	pem := r.JSON["public_key"].(string)
	other, _ := mustKey(t, token.ES256).Public().MarshalPEM()
	v := s.verifier(t, verify.Options{PublicKeysPEM: []string{string(other), pem}})
	access, _ := s.login(t, "alice", alicePassword)
	id, err := v.Verify(context.Background(), access)
	if err != nil || id.Subject != "kisee-alice" {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	if email, _ := id.Claims.String("email"); email != "alice@example.com" {
		t.Errorf("whitelisted claim email = %q", email)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	pem, _ := mustKey(t, token.ES256).Public().MarshalPEM()
	for name, o := range map[string]verify.Options{
		"no issuer":      {JWKSURL: "https://auth.example.com/jwks.json"},
		"no keys":        {Issuer: "x"},
		"two sources":    {Issuer: "x", JWKSURL: "https://auth.example.com/jwks.json", PublicKeysPEM: []string{string(pem)}},
		"relative URL":   {Issuer: "x", JWKSURL: "/jwks.json"},
		"file URL":       {Issuer: "x", JWKSURL: "file:///etc/passwd"},
		"bad PEM":        {Issuer: "x", PublicKeysPEM: []string{"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}},
		"symmetric junk": {Issuer: "x", PublicKeysPEM: []string{"secret"}},
	} {
		if _, err := verify.New(context.Background(), o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func TestIdentityGroups(t *testing.T) {
	t.Parallel()
	id := &verify.Identity{Subject: "kisee-ada", Groups: []string{"articles.writers", "staff", "admin.developers.staff"}}
	for _, c := range []struct {
		got  bool
		want bool
		what string
	}{
		{id.HasGroup("staff"), true, `HasGroup("staff")`},
		{id.HasGroup("articles"), false, `HasGroup("articles") (a subgroup is not the group)`},
		{id.HasGroup("admin.developers"), false, `HasGroup("admin.developers")`},
		{id.InGroupTree("articles"), true, `InGroupTree("articles")`},
		{id.InGroupTree("articles."), true, `InGroupTree("articles.")`},
		{id.InGroupTree("articles.writers"), true, `InGroupTree("articles.writers") (the group itself)`},
		{id.InGroupTree("articles.writers.x"), false, `InGroupTree("articles.writers.x") (a parent is not in a subtree)`},
		{id.InGroupTree("article"), false, `InGroupTree("article") (segments, not characters)`},
		{id.InGroupTree("admin"), true, `InGroupTree("admin")`},
		{id.InGroupTree(""), false, `InGroupTree("")`},
		{id.InGroupTree("."), false, `InGroupTree(".")`},
		{id.AnyOf("nobody", "staff"), true, `AnyOf("nobody", "staff")`},
		{id.AnyOf("nobody", "articles"), false, `AnyOf("nobody", "articles")`},
		{id.AnyOf(), false, `AnyOf()`},
		{id.AllOf("staff", "articles.writers"), true, `AllOf("staff", "articles.writers")`},
		{id.AllOf("staff", "articles"), false, `AllOf("staff", "articles")`},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	var none *verify.Identity
	if none.HasGroup("staff") || none.InGroupTree("staff") || none.AnyOf("staff") {
		t.Error("a nil Identity is in a group")
	}
	// A group name that merely starts like the tree is not in it.
	if (&verify.Identity{Groups: []string{"articles_old", "articlesx.y"}}).InGroupTree("articles") {
		t.Error(`"articles_old" is in the tree of "articles"`)
	}
}

// The net/http adapter: the same answers, the identity in r.Context().
func TestHTTPAdapter(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	key := mustKey(t, token.ES256)
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	auth := verify.HTTP(verify.Middleware(v))
	staff := verify.HTTP(verify.RequireGroups("staff"))
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := verify.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", 500)
			return
		}
		_, _ = w.Write([]byte("hello " + id.Subject))
	})
	mux := http.NewServeMux()
	mux.Handle("/me", auth(hello))
	mux.Handle("/admin", auth(staff(hello)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ada := sign(t, key, token.TypeAccess, accessClaims(iss, "kisee-ada", time.Now(), "staff"))
	bob := sign(t, key, token.TypeAccess, accessClaims(iss, "kisee-bob", time.Now()))
	if r := Do(t, "GET", srv.URL+"/admin", nil, Bearer(ada)...).WantStatus(t, 200); string(r.Body) != "hello kisee-ada" {
		t.Errorf("body %q", r.Body)
	}
	Do(t, "GET", srv.URL+"/me", nil, Bearer(bob)...).WantStatus(t, 200)
	Do(t, "GET", srv.URL+"/admin", nil, Bearer(bob)...).WantProblem(t, 403, "Missing group")
	wantRefused(t, Do(t, "GET", srv.URL+"/admin", nil), "Missing token")
	wantRefused(t, Do(t, "GET", srv.URL+"/me", nil, Bearer(ada+"x")...), "Invalid token")
}

// Options of the middleware, HEAD answers, and a group check without the
// middleware before it.
func TestMiddlewareOptions(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	key := mustKey(t, token.ES256)
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	ada := sign(t, key, token.TypeAccess, accessClaims(iss, "kisee-ada", time.Now(), "staff"))

	r := Do(t, "HEAD", svc+"/me", nil)
	if r.StatusCode != 401 || len(r.Body) != 0 || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("HEAD without token: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
	wantRefused(t, Do(t, "GET", svc+"/forgot", nil), "Missing token")
	Do(t, "GET", svc+"/forgot", nil, Bearer(ada)...).WantProblem(t, 500, "Internal error")

	e := echo.New()
	e.GET("/skipped", me, verify.Middleware(v, verify.WithSkipper(func(c echo.Context) bool { return c.Path() == "/skipped" })))
	e.GET("/own", me, verify.Middleware(v, verify.WithErrorHandler(func(c echo.Context, p *web.Problem) error {
		return c.String(p.Status, "custom: "+p.Title)
	})))
	srv := httptest.NewServer(e)
	defer srv.Close()
	Do(t, "GET", srv.URL+"/skipped", nil).WantStatus(t, 200)
	if r := Do(t, "GET", srv.URL+"/own", nil).WantStatus(t, 401); string(r.Body) != "custom: Missing token" {
		t.Errorf("custom error handler: %q", r.Body)
	}
}

// Leeway: a token just past its expiry passes within the leeway, and a
// negative leeway means none.
func TestLeeway(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	key := mustKey(t, token.ES256)
	claims := accessClaims(iss, "kisee-ada", time.Now())
	claims.ExpiresAt = time.Now().Add(-10 * time.Second)
	raw := sign(t, key, token.TypeAccess, claims)
	for _, c := range []struct {
		leeway time.Duration
		ok     bool
	}{{0, true}, {time.Minute, true}, {-1, false}, {5 * time.Second, false}} {
		v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss, Leeway: c.leeway})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), raw); (err == nil) != c.ok {
			t.Errorf("leeway %v: %v", c.leeway, err)
		}
	}
}

func TestWithIdentity(t *testing.T) {
	t.Parallel()
	id := &verify.Identity{Subject: "kisee-ada", Groups: []string{"staff"}}
	got, ok := verify.IdentityFrom(verify.WithIdentity(context.Background(), id))
	if !ok || got != id {
		t.Fatalf("IdentityFrom = %v, %v", got, ok)
	}
	if _, ok := verify.IdentityFrom(verify.WithIdentity(context.Background(), nil)); ok {
		t.Error("a nil identity was found")
	}
	if _, ok := verify.IdentityFrom(context.Background()); ok {
		t.Error("an identity in an empty context")
	}
}
