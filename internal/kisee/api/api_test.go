package api_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

const (
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
)

func basic(user, pass string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func login(t *testing.T, k *kiseetest.Server, user, pass string) string {
	t.Helper()
	r := Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": user, "password": pass}).WantStatus(t, 201)
	toks, _ := r.JSON["tokens"].([]any)
	if len(toks) != 1 {
		t.Fatalf("tokens = %s", r.Body)
	}
	return toks[0].(string)
}

func TestJSONHome(t *testing.T) {
	k := kiseetest.Start(t, "")
	r := Do(t, "GET", k.URL+"/", nil).WantStatus(t, 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/json-home" {
		t.Fatalf("Content-Type %q", ct)
	}
	api, _ := r.JSON["api"].(map[string]any)
	if api["title"] != "Identification Provider" {
		t.Fatalf("title %v", api["title"])
	}
	res, _ := r.JSON["resources"].(map[string]any)
	for _, name := range []string{"jwt", "users", "password_recoveries", "jwks"} {
		entry, _ := res[name].(map[string]any)
		href, _ := entry["href"].(string)
		if !strings.HasPrefix(href, k.URL+"/") {
			t.Errorf("resource %s: href %q is not an absolute URL on %s", name, href, k.URL)
		}
	}
	r = Do(t, "GET", k.URL+"/", nil, "Accept", "application/json").WantStatus(t, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || strings.Contains(ct, "home") {
		t.Fatalf("Accept: application/json answered %q", ct)
	}
}

// The token Kisee issues verifies with the keys it publishes, and carries
// the claims SPEC lists.
func TestLoginIssuesVerifiableToken(t *testing.T) {
	k := kiseetest.Start(t, "[jwt]\niss = \"kisee.test\"\nttl = \"10m\"\n")
	for _, field := range []string{"username", "login"} {
		r := Do(t, "POST", k.URL+"/jwt/", map[string]string{field: "alice", "password": alicePassword}).WantStatus(t, 201)
		raw := r.JSON["tokens"].([]any)[0].(string)
		v := token.NewVerifier(token.NewRemoteKeySet(k.URL+"/jwks.json", token.RemoteOptions{}), token.WithIssuer("kisee.test"))
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("%s: token does not verify with /jwks.json: %v", field, err)
		}
		if c.Subject != "alice" || len(c.ID) < 22 || c.ExpiresAt.Sub(c.IssuedAt) != 10*time.Minute {
			t.Fatalf("%s: claims %+v", field, c)
		}
		if email, _ := c.String("email"); email != "alice@example.com" {
			t.Fatalf("email claim %q", email)
		}
		if loc := r.Header.Get("Location"); loc != "/jwt/"+c.ID {
			t.Fatalf("Location %q, want /jwt/%s", loc, c.ID)
		}
	}
}

func TestLoginRefusals(t *testing.T) {
	k := kiseetest.Start(t, "")
	url := k.URL + "/jwt/"
	cases := []struct {
		name   string
		body   any
		status int
		title  string
	}{
		{"wrong password", `{"username":"alice","password":"wrong"}`, 403, "Failed identification"},
		{"unknown user", `{"username":"mallory","password":"wrong"}`, 403, "Failed identification"},
		{"missing password", `{"username":"alice"}`, 422, "Missing username or password"},
		{"missing username", `{"password":"x"}`, 422, "Missing username or password"},
		{"empty strings", `{"username":"","password":""}`, 422, "Missing username or password"},
		{"null password", `{"username":"alice","password":null}`, 422, "Missing username or password"},
		{"empty object", `{}`, 422, "Missing username or password"},
		{"invalid JSON", `{"username":`, 400, "Invalid JSON"},
		{"not JSON", `username=alice&password=x`, 400, "Invalid JSON"},
		{"password as number", `{"username":"alice","password":123}`, 400, "Invalid JSON"},
		{"username as object", `{"username":{"$ne":null},"password":"x"}`, 400, "Invalid JSON"},
		{"array", `[]`, 400, "Invalid JSON"},
		{"empty body", ``, 400, "Invalid JSON"},
		{"1 MiB body", `{"username":"alice","password":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "Request body too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Do(t, "POST", url, tc.body).WantProblem(t, tc.status, tc.title)
		})
	}
	// Unknown user and wrong password are indistinguishable in the body.
	a := Do(t, "POST", url, `{"username":"alice","password":"wrong"}`)
	b := Do(t, "POST", url, `{"username":"nobody","password":"wrong"}`)
	if string(a.Body) != string(b.Body) {
		t.Fatalf("bodies differ:\n%s\n%s", a.Body, b.Body)
	}
	if Do(t, "GET", k.URL+"/health", nil).StatusCode != 200 {
		t.Fatal("unhealthy after bad input")
	}
}

func TestDescribeJWT(t *testing.T) {
	k := kiseetest.Start(t, "")
	r := Do(t, "GET", k.URL+"/jwt/", nil).WantStatus(t, 200)
	if !strings.Contains(string(r.Body), `"password"`) || !strings.Contains(string(r.Body), `"POST"`) {
		t.Fatalf("GET /jwt/ does not describe the POST: %s", r.Body)
	}
}

func TestTokenInfoAndRevocation(t *testing.T) {
	k := kiseetest.Start(t, "")
	alice := login(t, k, "alice", alicePassword)
	other := login(t, k, "alice", alicePassword)
	bob := login(t, k, "bob", bobPassword)
	c, err := token.NewVerifier(token.NewStaticKeySet(k.Key.Public()), token.WithIssuer(k.URL)).Verify(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	url := k.URL + "/jwt/" + c.ID

	r := Do(t, "GET", url, nil, Bearer(alice)...).WantStatus(t, 200)
	if r.JSON["jti"] != c.ID || r.JSON["sub"] != "alice" || r.JSON["revoked"] != false || r.JSON["exp"] != float64(c.ExpiresAt.Unix()) {
		t.Fatalf("token info %s", r.Body)
	}
	Do(t, "GET", url, nil, basic("alice", alicePassword)...).WantStatus(t, 200)

	// Nobody else learns anything about it.
	Do(t, "GET", url, nil, Bearer(other)...).WantProblem(t, 404, "Token not found")
	Do(t, "GET", url, nil, Bearer(bob)...).WantProblem(t, 404, "Token not found")
	Do(t, "GET", url, nil, basic("bob", bobPassword)...).WantProblem(t, 404, "Token not found")
	Do(t, "GET", k.URL+"/jwt/unknown", nil, Bearer(alice)...).WantProblem(t, 404, "Token not found")
	Do(t, "DELETE", url, nil, Bearer(bob)...).WantProblem(t, 404, "Token not found")

	// Missing or bad credentials are 401 with a challenge.
	r = Do(t, "GET", url, nil).WantProblem(t, 401, "Missing token")
	if r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	Do(t, "GET", url, nil, Bearer("not.a.token")...).WantProblem(t, 401, "Invalid token")
	Do(t, "GET", url, nil, basic("alice", "wrong")...).WantProblem(t, 401, "Failed identification")
	Do(t, "GET", url, nil, "Authorization", "Basic !!!").WantProblem(t, 401, "Missing token")

	// The owner revokes it: it is refused from then on, and shown revoked.
	Do(t, "DELETE", url, nil, Bearer(alice)...).WantStatus(t, 204)
	Do(t, "GET", url, nil, Bearer(alice)...).WantProblem(t, 401, "Token revoked")
	r = Do(t, "GET", url, nil, basic("alice", alicePassword)...).WantStatus(t, 200)
	if r.JSON["revoked"] != true {
		t.Fatalf("revoked token shown as %s", r.Body)
	}
	// Revoking one token leaves the others valid.
	Do(t, "GET", k.URL+"/jwt/"+jti(t, k, other), nil, Bearer(other)...).WantStatus(t, 200)
}

func jti(t *testing.T, k *kiseetest.Server, raw string) string {
	c, err := token.NewVerifier(token.NewStaticKeySet(k.Key.Public())).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// A token signed by Kisee's key but not issued (not recorded) is refused,
// and so is an expired one.
func TestForeignAndExpiredTokensRefused(t *testing.T) {
	k := kiseetest.Start(t, "")
	now := time.Now()
	forged, _ := token.NewSigner(k.Key).Sign(token.TypeJWT, token.Claims{Issuer: k.URL, Subject: "alice", ID: "never-issued", ExpiresAt: now.Add(time.Hour)})
	Do(t, "GET", k.URL+"/jwt/never-issued", nil, Bearer(forged)...).WantProblem(t, 401, "Token revoked")
	expired, _ := token.NewSigner(k.Key).Sign(token.TypeJWT, token.Claims{Issuer: k.URL, Subject: "alice", ID: "x", ExpiresAt: now.Add(-time.Hour)})
	r := Do(t, "GET", k.URL+"/jwt/x", nil, Bearer(expired)...).WantProblem(t, 401, "Invalid token")
	if !strings.Contains(r.JSON["detail"].(string), "expired") {
		t.Fatalf("detail %q", r.JSON["detail"])
	}
	other, _ := token.GenerateKey(token.ES256)
	stranger, _ := token.NewSigner(other).Sign(token.TypeJWT, token.Claims{Issuer: k.URL, Subject: "alice", ID: "x", ExpiresAt: now.Add(time.Hour)})
	Do(t, "GET", k.URL+"/jwt/x", nil, Bearer(stranger)...).WantProblem(t, 401, "Invalid token")
}

func TestHealthAndMetrics(t *testing.T) {
	k := kiseetest.Start(t, "")
	r := Do(t, "GET", k.URL+"/health", nil).WantStatus(t, 200)
	if r.JSON["status"] != "green" || r.JSON["database"] != "OK" || r.JSON["version"] != "test" {
		t.Fatalf("health %s", r.Body)
	}
	login(t, k, "alice", alicePassword)
	Do(t, "POST", k.URL+"/jwt/", `{"username":"alice","password":"nope"}`)
	m := Do(t, "GET", k.URL+"/metrics", nil).WantStatus(t, 200)
	for _, want := range []string{
		`kisee_logins_total{result="success"} 1`,
		`kisee_logins_total{result="failure"} 1`,
		`kisee_tokens_issued_total 1`,
		`kisee_password_hash_seconds_count`,
		`kisee_http_requests_total{method="POST",route="/jwt/",status="201"} 1`,
		`go_sql_open_connections{db_name="kisee"}`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestJWKSIsCacheable(t *testing.T) {
	k := kiseetest.Start(t, "")
	r := Do(t, "GET", k.URL+"/jwks.json", nil).WantStatus(t, 200)
	if !strings.Contains(r.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	keys, err := token.ParseJWKS(r.Body)
	if err != nil || len(keys) != 1 || keys[0].KeyID() != k.Key.KeyID() {
		t.Fatalf("jwks: %v %d", err, len(keys))
	}
	if strings.Contains(string(r.Body), `"d"`) {
		t.Fatal("JWKS leaks the private key")
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	k := kiseetest.Start(t, "")
	Do(t, "GET", k.URL+"/nope", nil).WantProblem(t, 404, "Not found")
	Do(t, "PUT", k.URL+"/jwt/", nil).WantProblem(t, 405, "Method not allowed")
	Do(t, "POST", k.URL+"/jwks.json", "{}").WantProblem(t, 405, "Method not allowed")
	_ = http.StatusOK
}

func TestServesOpenAPI(t *testing.T) {
	k := kiseetest.Start(t, "")
	r := Do(t, "GET", k.URL+"/openapi.yaml", nil).WantStatus(t, 200)
	if !strings.HasPrefix(string(r.Body), "openapi: 3.1.0") || r.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %s %.40s", r.Header.Get("Content-Type"), r.Body)
	}
}

func TestStatusPage(t *testing.T) {
	k := kiseetest.Start(t, "")
	login(t, k, "alice", alicePassword)
	Do(t, "POST", k.URL+"/jwt/", `{"username":"alice","password":"nope"}`).WantProblem(t, 403, "Failed identification")
	r := Do(t, "GET", k.URL+"/status", nil, "Accept", "application/json").WantStatus(t, 200)
	last, _ := r.JSON["last_hour"].(map[string]any)
	if r.JSON["healthy"] != true || last["successful logins"] != float64(1) || last["failed logins"] != float64(1) || last["tokens issued"] != float64(1) {
		t.Fatalf("status %s", r.Body)
	}
	keys, _ := r.JSON["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kid"] != k.Key.KeyID() {
		t.Fatalf("keys %v", keys)
	}
	h := Do(t, "GET", k.URL+"/status", nil, "Accept", "text/html").WantStatus(t, 200)
	if !strings.Contains(string(h.Body), "Kisee status") || !strings.Contains(h.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTML status: %.200s", h.Body)
	}
}
