package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	. "github.com/kisee-pasee/suite/pkg/verify/internal/verifytest"
)

// A service behind the middleware: identity in the request's context,
// group checks exact and by subtree, optional authentication. The same
// against a real Pasee is in internal/verifye2e.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	key := MustKey(t, token.ES256)
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: Issuer})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	now := time.Now()
	alice := Sign(t, key, token.TypeAccess, AccessClaims(Issuer, "kisee-alice", now, "articles.writers"))
	bob := Sign(t, key, token.TypeAccess, AccessClaims(Issuer, "kisee-bob", now, "staff"))
	both := Sign(t, key, token.TypeAccess, AccessClaims(Issuer, "kisee-carol", now, "articles.writers", "staff"))

	r := Do(t, "GET", svc+"/me", nil, Bearer(alice)...).WantStatus(t, 200)
	if r.JSON["subject"] != "kisee-alice" || r.JSON["idp"] != "kisee" || r.JSON["sid"] != "session-1" {
		t.Errorf("/me = %s", r.Body)
	}
	if g, _ := r.JSON["groups"].([]any); !reflect.DeepEqual(g, []any{"articles.writers"}) {
		t.Errorf("groups = %v, want [articles.writers]", r.JSON["groups"])
	}
	Do(t, "GET", svc+"/articles", nil, Bearer(alice)...).WantStatus(t, 200) // articles.writers is under articles
	Do(t, "GET", svc+"/admin", nil, Bearer(bob)...).WantStatus(t, 200)
	Do(t, "GET", svc+"/both", nil, Bearer(both)...).WantStatus(t, 200)
	for _, c := range []struct{ path, tok string }{{"/admin", alice}, {"/articles", bob}, {"/both", alice}, {"/both", bob}} {
		r := Do(t, "GET", svc+c.path, nil, Bearer(c.tok)...)
		WantProblem(t, r, 403, "Missing group")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope"` {
			t.Errorf("%s: WWW-Authenticate = %q", c.path, got)
		}
	}
	if r := Do(t, "GET", svc+"/admin", nil, Bearer(alice)...); r.JSON["detail"] != `This resource needs membership of one of the groups "staff".` {
		t.Errorf("403 detail = %v", r.JSON["detail"])
	}

	// Optional authentication: anonymous callers pass, bad tokens do not,
	// and a group check after it asks anonymous callers for a token.
	if r := Do(t, "GET", svc+"/maybe", nil).WantStatus(t, 200); r.JSON["anonymous"] != true {
		t.Errorf("/maybe anonymous = %s", r.Body)
	}
	if r := Do(t, "GET", svc+"/maybe", nil, Bearer(bob)...).WantStatus(t, 200); r.JSON["subject"] != "kisee-bob" {
		t.Errorf("/maybe with a token = %s", r.Body)
	}
	WantRefused(t, Do(t, "GET", svc+"/maybe", nil, Bearer("garbage")...), "Invalid token")
	WantRefused(t, Do(t, "GET", svc+"/maybe/articles", nil), "Missing token")
	Do(t, "GET", svc+"/maybe/articles", nil, Bearer(alice)...).WantStatus(t, 200)

	// The scheme is matched without regard to case; other schemes are no token.
	Do(t, "GET", svc+"/me", nil, "Authorization", "bearer "+alice).WantStatus(t, 200)
	WantRefused(t, Do(t, "GET", svc+"/me", nil, "Authorization", "Basic YWxpY2U6eA=="), "Missing token")
}

// Tokens Pasee did not issue as access tokens are refused, for the right
// reason, whether forged, expired, of another type or another issuer.
func TestRefusedTokens(t *testing.T) {
	t.Parallel()
	key := MustKey(t, token.ES256) // the issuer's own signing key: what an insider would have
	iss := Issuer
	now := time.Now()
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	pub, _ := key.Public().MarshalPEM()
	header := func(alg, typ string) map[string]any {
		return map[string]any{"alg": alg, "typ": typ, "kid": key.KeyID()}
	}
	withClaim := func(name string, value any) token.Claims {
		c := AccessClaims(iss, "kisee-alice", now, "staff")
		c.Set(name, value)
		return c
	}
	expired := AccessClaims(iss, "kisee-alice", now.Add(-time.Hour), "staff")
	noSub := AccessClaims(iss, "", now, "staff")
	future := AccessClaims(iss, "kisee-alice", now, "staff")
	future.NotBefore = now.Add(time.Hour)
	cases := []struct {
		name string
		raw  string
		why  error
	}{
		{"forged with Pasee's kid", Forge(t, header("ES256", "at+jwt"), AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrSignature},
		{"alg none", Encode(t, header("none", "at+jwt"), AccessClaims(iss, "kisee-alice", now, "staff")) + ".", token.ErrAlgorithm},
		{"HS256 keyed with the public key", HMACWith(t, pub, header("HS256", "at+jwt"), AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrAlgorithm},
		{"expired", Sign(t, key, token.TypeAccess, expired), token.ErrExpired},
		{"not yet valid", Sign(t, key, token.TypeAccess, future), token.ErrNotYetValid},
		{"wrong issuer", Sign(t, key, token.TypeAccess, AccessClaims("https://other.example.com", "kisee-alice", now, "staff")), token.ErrIssuer},
		{"identity token type", Sign(t, key, token.TypeJWT, AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"refresh token type", Sign(t, key, token.TypeRefresh, AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"reset token type", Sign(t, key, token.TypeReset, AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrType},
		{"refresh claim in an access token", Sign(t, key, token.TypeAccess, withClaim("refresh_token", true)), token.ErrType},
		{"no subject", Sign(t, key, token.TypeAccess, noSub), token.ErrMalformed},
		{"groups not a list", Sign(t, key, token.TypeAccess, withClaim("groups", "staff")), token.ErrMalformed},
		{"groups not strings", Sign(t, key, token.TypeAccess, withClaim("groups", []any{"staff", 1})), token.ErrMalformed},
		{"signed by another key", Sign(t, MustKey(t, token.ES256), token.TypeAccess, AccessClaims(iss, "kisee-alice", now, "staff")), token.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), c.raw)
			if !errors.Is(err, c.why) {
				t.Fatalf("Verify: %v, want %v", err, c.why)
			}
			r := Do(t, "GET", svc+"/admin", nil, Bearer(c.raw)...)
			WantRefused(t, r, "Invalid token")
			if r.JSON["detail"] != err.Error() {
				t.Errorf("detail %q, want %q", r.JSON["detail"], err.Error())
			}
		})
	}

	// The same key and claims, done right, pass: the cases above fail for
	// their own reason only.
	good := Sign(t, key, token.TypeAccess, AccessClaims(iss, "kisee-alice", now, "staff"))
	Do(t, "GET", svc+"/admin", nil, Bearer(good)...).WantStatus(t, 200)

	// An audience, when required, must be in the token.
	aud, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss, Audience: "articles-api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aud.Verify(context.Background(), good); !errors.Is(err, token.ErrAudience) {
		t.Errorf("without aud: %v, want ErrAudience", err)
	}
	withAud := AccessClaims(iss, "kisee-alice", now)
	withAud.Audience = []string{"articles-api"}
	if _, err := aud.Verify(context.Background(), Sign(t, key, token.TypeAccess, withAud)); err != nil {
		t.Errorf("with aud: %v", err)
	}
}

// Keys from a JWK Set: a rotated key is picked up at its first token,
// forged key ids do not make the verifier hammer the issuer, and a retired
// key stops working once the cache expires.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	old, next := MustKey(t, token.ES256), MustKey(t, token.EdDSA)
	set := NewJWKS(t, old.Public())
	clk := NewClock(time.Now())
	v, err := verify.New(context.Background(), verify.Options{
		JWKSURL: set.URL, Issuer: iss, Now: clk.Now, MinRefresh: time.Minute, MaxAge: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	check := func(key *token.PrivateKey, want int) {
		t.Helper()
		raw := Sign(t, key, token.TypeAccess, AccessClaims(iss, "kisee-alice", clk.Now()))
		Do(t, "GET", svc+"/me", nil, Bearer(raw)...).WantStatus(t, want)
	}
	if set.Fetches.Load() != 0 {
		t.Fatal("fetched before the first token")
	}
	check(old, 200)
	check(old, 200)
	if n := set.Fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for two tokens, want 1 (cached)", n)
	}

	// Pasee publishes the next key, then signs with it.
	set.Set(t, next.Public(), old.Public())
	clk.Add(2 * time.Minute)
	check(next, 200)
	if n := set.Fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2 (refetch on unknown kid)", n)
	}
	check(old, 200) // still published

	// Tokens naming unknown kids right after a fetch do not cause fetches.
	for range 5 {
		check(MustKey(t, token.ES256), 401)
	}
	if n := set.Fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after forged kids, want 2 (rate-limited)", n)
	}

	// The old key is retired: accepted while the cache lives, refused after.
	set.Set(t, next.Public())
	check(old, 200)
	clk.Add(time.Hour + time.Minute)
	check(old, 401)
	check(next, 200)
	if n := set.Fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after expiry, want 3", n)
	}

	// Refresh fetches at once.
	if err := v.Refresh(context.Background()); err != nil || set.Fetches.Load() != 4 {
		t.Fatalf("Refresh: %v, %d fetches", err, set.Fetches.Load())
	}
}

// When Pasee's keys cannot be fetched, the token cannot be checked: 503,
// not 401, and the verifier says why.
func TestKeySetUnavailable(t *testing.T) {
	t.Parallel()
	key := MustKey(t, token.ES256)
	set := NewJWKS(t, key.Public())
	set.Fail.Store(true)
	v, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	raw := Sign(t, key, token.TypeAccess, AccessClaims("https://auth.example.com", "kisee-alice", time.Now()))
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, token.ErrKeySetUnavailable) {
		t.Fatalf("Verify: %v, want ErrKeySetUnavailable", err)
	}
	r := Do(t, "GET", service(t, v)+"/me", nil, Bearer(raw)...)
	WantProblem(t, r, 503, "Service unavailable")
	if strings.Contains(string(r.Body), set.URL) {
		t.Errorf("the 503 shows the cause: %s", r.Body)
	}

	// Prefetch turns the same failure into an error at start.
	if _, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "x", Prefetch: true}); !errors.Is(err, token.ErrKeySetUnavailable) {
		t.Errorf("Prefetch of a failing set: %v", err)
	}
	set.Fail.Store(false)
	if _, err := verify.New(context.Background(), verify.Options{JWKSURL: set.URL, Issuer: "x", Prefetch: true}); err != nil {
		t.Errorf("Prefetch: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	pem, _ := MustKey(t, token.ES256).Public().MarshalPEM()
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

// Options of the middleware, HEAD answers, and a group check without the
// middleware before it.
func TestMiddlewareOptions(t *testing.T) {
	t.Parallel()
	const iss = "https://auth.example.com"
	key := MustKey(t, token.ES256)
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, v)
	ada := Sign(t, key, token.TypeAccess, AccessClaims(iss, "kisee-ada", time.Now(), "staff"))

	r := Do(t, "HEAD", svc+"/me", nil)
	if r.StatusCode != 401 || len(r.Body) != 0 || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("HEAD without token: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
	WantRefused(t, Do(t, "GET", svc+"/forgot", nil), "Missing token")
	WantProblem(t, Do(t, "GET", svc+"/forgot", nil, Bearer(ada)...), 500, "Internal error")

	mux := http.NewServeMux()
	mux.Handle("/skipped", verify.Middleware(v, verify.WithSkipper(func(r *http.Request) bool { return r.URL.Path == "/skipped" }))(me))
	mux.Handle("/own", verify.Middleware(v, verify.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, p *verify.Problem) {
		w.WriteHeader(p.Status)
		_, _ = w.Write([]byte("custom: " + p.Title))
	}))(me))
	srv := httptest.NewServer(mux)
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
	key := MustKey(t, token.ES256)
	claims := AccessClaims(iss, "kisee-ada", time.Now())
	claims.ExpiresAt = time.Now().Add(-10 * time.Second)
	raw := Sign(t, key, token.TypeAccess, claims)
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
