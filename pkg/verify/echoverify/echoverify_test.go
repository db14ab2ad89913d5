package echoverify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	"github.com/kisee-pasee/suite/pkg/verify/echoverify"
	. "github.com/kisee-pasee/suite/pkg/verify/internal/verifytest"
)

// me answers the caller's subject, or "anonymous".
func me(c echo.Context) error {
	id, ok := echoverify.FromContext(c)
	if !ok {
		return c.String(http.StatusOK, "anonymous")
	}
	return c.String(http.StatusOK, id.Subject)
}

// The echo middlewares answer as pkg/verify's: identity in the context,
// group checks, optional authentication, HEAD, and the options.
func TestEchoMiddleware(t *testing.T) {
	t.Parallel()
	key := MustKey(t, token.ES256)
	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: Issuer})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	auth := echoverify.Middleware(v)
	e.GET("/me", me, auth)
	e.HEAD("/me", me, auth)
	e.GET("/articles", me, auth, echoverify.RequireGroupTree("articles"))
	e.GET("/admin", me, auth, echoverify.RequireGroups("staff"))
	e.GET("/both", me, auth, echoverify.RequireAllGroups("staff", "articles.writers"))
	e.GET("/custom", me, auth, echoverify.Require(func(id *verify.Identity) bool { return id.Subject == "kisee-bob" }, "bob's club"))
	e.GET("/maybe", me, echoverify.Middleware(v, echoverify.Optional()))
	e.GET("/forgot", me, echoverify.RequireGroups("staff"))
	e.GET("/skipped", me, echoverify.Middleware(v, echoverify.WithSkipper(func(c echo.Context) bool { return c.Path() == "/skipped" })))
	e.GET("/own", me, echoverify.Middleware(v, echoverify.WithErrorHandler(func(c echo.Context, p *verify.Problem) error {
		return c.String(p.Status, "custom: "+p.Title)
	})))
	e.GET("/returned", me, echoverify.Middleware(v, echoverify.WithErrorHandler(func(_ echo.Context, p *verify.Problem) error {
		return p // to echo's error handler
	})))
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if p, ok := err.(*verify.Problem); ok {
			_ = c.String(p.Status, "from the error handler: "+p.Title)
			return
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	now := time.Now()
	alice := Sign(t, key, token.TypeAccess, AccessClaims(Issuer, "kisee-alice", now, "articles.writers"))
	bob := Sign(t, key, token.TypeAccess, AccessClaims(Issuer, "kisee-bob", now, "staff", "articles.writers"))

	if r := Do(t, "GET", srv.URL+"/me", nil, Bearer(alice)...).WantStatus(t, 200); string(r.Body) != "kisee-alice" {
		t.Errorf("/me = %q", r.Body)
	}
	Do(t, "GET", srv.URL+"/articles", nil, Bearer(alice)...).WantStatus(t, 200)
	Do(t, "GET", srv.URL+"/admin", nil, Bearer(bob)...).WantStatus(t, 200)
	Do(t, "GET", srv.URL+"/both", nil, Bearer(bob)...).WantStatus(t, 200)
	Do(t, "GET", srv.URL+"/custom", nil, Bearer(bob)...).WantStatus(t, 200)
	for _, path := range []string{"/admin", "/both", "/custom"} {
		r := Do(t, "GET", srv.URL+path, nil, Bearer(alice)...)
		WantProblem(t, r, 403, "Missing group")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope"` {
			t.Errorf("%s: WWW-Authenticate = %q", path, got)
		}
	}
	if r := Do(t, "GET", srv.URL+"/custom", nil, Bearer(alice)...); r.JSON["detail"] != "This resource needs membership of bob's club." {
		t.Errorf("detail = %v", r.JSON["detail"])
	}
	WantRefused(t, Do(t, "GET", srv.URL+"/me", nil), "Missing token")
	WantRefused(t, Do(t, "GET", srv.URL+"/me", nil, Bearer(alice+"x")...), "Invalid token")
	if r := Do(t, "HEAD", srv.URL+"/me", nil); r.StatusCode != 401 || len(r.Body) != 0 || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("HEAD without token: %d %q %v", r.StatusCode, r.Body, r.Header)
	}

	if r := Do(t, "GET", srv.URL+"/maybe", nil).WantStatus(t, 200); string(r.Body) != "anonymous" {
		t.Errorf("/maybe = %q", r.Body)
	}
	if r := Do(t, "GET", srv.URL+"/maybe", nil, Bearer(bob)...).WantStatus(t, 200); string(r.Body) != "kisee-bob" {
		t.Errorf("/maybe with a token = %q", r.Body)
	}
	WantRefused(t, Do(t, "GET", srv.URL+"/maybe", nil, Bearer("garbage")...), "Invalid token")

	WantRefused(t, Do(t, "GET", srv.URL+"/forgot", nil), "Missing token")
	WantProblem(t, Do(t, "GET", srv.URL+"/forgot", nil, Bearer(bob)...), 500, "Internal error")

	Do(t, "GET", srv.URL+"/skipped", nil).WantStatus(t, 200)
	if r := Do(t, "GET", srv.URL+"/own", nil).WantStatus(t, 401); string(r.Body) != "custom: Missing token" {
		t.Errorf("custom error handler: %q", r.Body)
	}
	if r := Do(t, "GET", srv.URL+"/returned", nil).WantStatus(t, 401); string(r.Body) != "from the error handler: Missing token" {
		t.Errorf("problem returned to echo: %q", r.Body)
	}
}
