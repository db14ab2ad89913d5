package echoverify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	"github.com/kisee-pasee/suite/pkg/verify/echoverify"
)

// The examples stand in for Pasee with a key of their own: signer signs
// access tokens as Pasee does, and its public key is what a service would
// pin (or fetch from Pasee's /jwks.json).
var (
	paseeKey, _ = token.GenerateKey(token.ES256)
	signer      = token.NewSigner(paseeKey)
)

// accessToken is what Pasee issues to user in groups.
func accessToken(user string, groups ...string) string {
	now := time.Now()
	c := token.Claims{Issuer: "https://auth.example.com", Subject: user, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	c.Set("groups", append([]string{}, groups...))
	raw, err := signer.Sign(token.TypeAccess, c)
	if err != nil {
		panic(err)
	}
	return raw
}

// get sends GET path to h with an optional bearer token and prints the
// status and the body.
func get(h http.Handler, path, bearer string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
}

// An echo service checks tokens on its routes and groups per route. In a
// real service the keys come from Pasee's JWK Set:
//
//	v, err := verify.New(ctx, verify.Options{
//		JWKSURL: "https://auth.example.com/jwks.json",
//		Issuer:  "https://auth.example.com",
//	})
func Example() {
	v, _ := verify.New(context.Background(), verify.Options{
		KeySet: token.NewStaticKeySet(paseeKey.Public()),
		Issuer: "https://auth.example.com",
	})

	e := echo.New()
	auth := echoverify.Middleware(v)
	e.GET("/me", func(c echo.Context) error {
		id, _ := echoverify.FromContext(c)
		return c.String(http.StatusOK, "hello "+id.Subject+"\n")
	}, auth)
	e.GET("/admin", func(c echo.Context) error {
		return c.String(http.StatusOK, "welcome\n")
	}, auth, echoverify.RequireGroups("staff"))

	get(e, "/me", accessToken("kisee-alice"))
	get(e, "/me", "")
	get(e, "/admin", accessToken("kisee-root", "staff"))
	get(e, "/admin", accessToken("kisee-alice", "articles.staff"))
	// Output:
	// 200 hello kisee-alice
	// 401 {"_meta":{"title":"Missing token"},"_type":"error","detail":"Send a token in the header \"Authorization: Bearer \u003ctoken\u003e\".","status":401,"title":"Missing token","type":"about:blank"}
	// 200 welcome
	// 403 {"_meta":{"title":"Missing group"},"_type":"error","detail":"This resource needs membership of one of the groups \"staff\".","status":403,"title":"Missing group","type":"about:blank"}
}

// A service with its own error format hands the refusal to its echo error
// handler.
func ExampleWithErrorHandler() {
	v, _ := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(paseeKey.Public()), Issuer: "https://auth.example.com"})

	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if p, ok := err.(*verify.Problem); ok {
			_ = c.JSON(p.Status, map[string]string{"error": p.Title})
			return
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.GET("/me", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
		echoverify.Middleware(v, echoverify.WithErrorHandler(func(_ echo.Context, p *verify.Problem) error { return p })))

	get(e, "/me", "not-a-token")
	// Output: 401 {"error":"Invalid token"}
}
