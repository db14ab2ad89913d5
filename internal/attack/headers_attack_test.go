package attack

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/web"
)

var routeParam = regexp.MustCompile(`:[a-z_]+`)

// TestSecurityHeadersOnEveryRoute requests every route either service
// registers — read from the routers, so a route added later is covered —
// without credentials and with them, and checks the security headers of
// each answer: nosniff, frame-deny, no referrer, a CSP forbidding
// everything on JSON, and no caching except of the public documents.
// Answers carrying tokens are never cacheable.
func TestSecurityHeadersOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := startEnv(t, paseetest.SQLite)
	services := []struct {
		name, url string
		srv       *web.Server
		auth      []string
	}{
		{"kisee", e.kiseeURL, e.kisee.App.Server, basic("alice", alicePassword)},
		{"pasee", e.paseeURL, e.pasee.App.Server, bearer(e.bob.access)},
	}
	checked := 0
	for _, s := range services {
		routes := s.srv.Routes()
		if len(routes) < 10 {
			t.Fatalf("%s registers %d routes", s.name, len(routes))
		}
		for _, rt := range routes {
			if strings.Contains(rt.Path, "*") || rt.Method == "echo_route_any" {
				continue
			}
			path := routeParam.ReplaceAllString(rt.Path, "x")
			for _, headers := range [][]string{nil, s.auth, {"Origin", appOrigin}} {
				r := do(t, rt.Method, s.url+path, nil, headers...)
				if r.status >= 500 {
					t.Errorf("%s %s %s: %d %s", s.name, rt.Method, path, r.status, r.body)
				}
				if err := securityHeaderError(r); err != nil {
					t.Errorf("%s %s %s (%d): %v", s.name, rt.Method, path, r.status, err)
				}
				// API answers are never cached, but for the public documents
				// (pages and their assets decide for themselves).
				if cc := r.header.Get("Cache-Control"); cc != "no-store" && !publicDocument(path) && strings.Contains(r.header.Get("Content-Type"), "json") {
					t.Errorf("%s %s %s: Cache-Control %q on a private answer", s.name, rt.Method, path, cc)
				}
				checked++
			}
		}
	}
	// The answers that carry tokens or token data.
	noStore := func(what string, r *response, status int) {
		t.Helper()
		if r.status != status || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q", what, r.status, r.header.Get("Cache-Control"))
		}
		if err := securityHeaderError(r); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		checked++
	}
	noStore("Kisee POST /jwt/", do(t, "POST", e.kiseeURL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}), 201)
	noStore("Kisee GET /jwt/{jti}", do(t, "GET", e.kiseeURL+"/jwt/"+e.aliceJTI, nil, bearer(e.aliceID)...), 200)
	login := do(t, "POST", e.paseeURL+"/tokens/?idp=kisee", map[string]string{"login": "alice", "password": alicePassword})
	noStore("Pasee POST /tokens/", login, 201)
	if login.header.Get("Pragma") != "no-cache" {
		t.Errorf("Pasee POST /tokens/: Pragma %q", login.header.Get("Pragma"))
	}
	noStore("Pasee POST /tokens/?refresh", do(t, "POST", e.paseeURL+"/tokens/?refresh", nil, bearer(login.json["refresh_token"].(string))...), 201)
	noStore("Pasee POST /tokens/introspect", do(t, "POST", e.paseeURL+"/tokens/introspect", map[string]string{"token": e.bob.access}, paseetest.IntrospectionAuth()...), 200)
	noStore("Kisee GET /password_recoveries/ with a reset token", do(t, "GET", e.kiseeURL+"/password_recoveries/", nil, bearer(e.aliceReset)...), 200)
	t.Logf("security headers checked on %d answers", checked)
}

// publicDocument reports whether path is one of the public, cacheable
// documents: the JSON-Home, the keys, the API description.
func publicDocument(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case "", "/jwks.json", "/public-key", "/openapi.yaml", "/.well-known/openid-configuration":
		return true
	}
	return false
}
