package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
)

// The examples stand in for Pasee with a key of their own: pasee signs
// access tokens as Pasee does, and paseePEM is the public key a service
// would pin (or fetch from Pasee's /jwks.json).
type fakePasee struct {
	key    *token.PrivateKey
	issuer string
}

func newFakePasee() fakePasee {
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		panic(err)
	}
	return fakePasee{key: key, issuer: "https://auth.example.com"}
}

func (p fakePasee) publicPEM() string {
	pem, err := p.key.Public().MarshalPEM()
	if err != nil {
		panic(err)
	}
	return string(pem)
}

// accessToken is what Pasee issues to user in groups.
func (p fakePasee) accessToken(user string, groups ...string) string {
	now := time.Now()
	c := token.Claims{Issuer: p.issuer, Subject: user, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), ID: "example"}
	if groups == nil {
		groups = []string{}
	}
	c.Set("groups", groups)
	c.Set("idp", "kisee")
	raw, err := token.NewSigner(p.key).Sign(token.TypeAccess, c)
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

// A verifier checks an access token and returns who the caller is. In a
// real service the keys come from Pasee's JWK Set:
//
//	v, err := verify.New(ctx, verify.Options{
//		JWKSURL: "https://auth.example.com/jwks.json",
//		Issuer:  "https://auth.example.com",
//	})
func Example() {
	pasee := newFakePasee()
	v, err := verify.New(context.Background(), verify.Options{
		PublicKeysPEM: []string{pasee.publicPEM()},
		Issuer:        "https://auth.example.com",
	})
	if err != nil {
		panic(err)
	}
	id, err := v.Verify(context.Background(), pasee.accessToken("kisee-alice", "articles.writers"))
	fmt.Println(id.Subject, id.Groups, id.IDP, err)
	// Output: kisee-alice [articles.writers] kisee <nil>
}

// Middleware refuses requests without a valid access token with the 401
// problem document Kisee and Pasee answer, and gives handlers the caller
// in the request's context.
func ExampleMiddleware() {
	pasee := newFakePasee()
	v, _ := verify.New(context.Background(), verify.Options{PublicKeysPEM: []string{pasee.publicPEM()}, Issuer: pasee.issuer})

	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verify.IdentityFrom(r.Context())
		fmt.Fprintln(w, "hello", id.Subject)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /me", verify.Middleware(v)(me))

	get(mux, "/me", pasee.accessToken("kisee-alice"))
	get(mux, "/me", "")
	get(mux, "/me", "not-a-token")
	// Output:
	// 200 hello kisee-alice
	// 401 {"_meta":{"title":"Missing token"},"_type":"error","detail":"Send a token in the header \"Authorization: Bearer \u003ctoken\u003e\".","status":401,"title":"Missing token","type":"about:blank"}
	// 401 {"_meta":{"title":"Invalid token"},"_type":"error","detail":"malformed token: expected three dot-separated parts","status":401,"title":"Invalid token","type":"about:blank"}
}

// RequireGroupTree admits the members of a group and of any group under
// it: "any group under articles.".
func ExampleRequireGroupTree() {
	pasee := newFakePasee()
	v, _ := verify.New(context.Background(), verify.Options{PublicKeysPEM: []string{pasee.publicPEM()}, Issuer: pasee.issuer})

	articles := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "the articles") })
	mux := http.NewServeMux()
	mux.Handle("GET /articles", verify.Middleware(v)(verify.RequireGroupTree("articles")(articles)))

	get(mux, "/articles", pasee.accessToken("kisee-alice", "articles.writers"))
	get(mux, "/articles", pasee.accessToken("kisee-bob", "articles"))
	get(mux, "/articles", pasee.accessToken("kisee-eve", "articles_archive"))
	// Output:
	// 200 the articles
	// 200 the articles
	// 403 {"_meta":{"title":"Missing group"},"_type":"error","detail":"This resource needs membership of a group in the tree of \"articles\".","status":403,"title":"Missing group","type":"about:blank"}
}

// RequireGroups admits the members of one of the groups, exactly: staff of
// a subgroup are not staff.
func ExampleRequireGroups() {
	pasee := newFakePasee()
	v, _ := verify.New(context.Background(), verify.Options{PublicKeysPEM: []string{pasee.publicPEM()}, Issuer: pasee.issuer})

	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verify.IdentityFrom(r.Context())
		fmt.Fprintln(w, "welcome", id.Subject)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /admin", verify.Middleware(v)(verify.RequireGroups("staff")(admin)))

	get(mux, "/admin", pasee.accessToken("kisee-root", "staff"))
	get(mux, "/admin", pasee.accessToken("kisee-alice", "articles.staff"))
	// Output:
	// 200 welcome kisee-root
	// 403 {"_meta":{"title":"Missing group"},"_type":"error","detail":"This resource needs membership of one of the groups \"staff\".","status":403,"title":"Missing group","type":"about:blank"}
}

// Optional lets anonymous callers through: the handler decides what they
// see. A token that is sent must still be valid.
func ExampleOptional() {
	pasee := newFakePasee()
	v, _ := verify.New(context.Background(), verify.Options{PublicKeysPEM: []string{pasee.publicPEM()}, Issuer: pasee.issuer})

	home := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := verify.IdentityFrom(r.Context()); ok {
			fmt.Fprintln(w, "hello", id.Subject)
			return
		}
		fmt.Fprintln(w, "hello stranger")
	})
	h := verify.Middleware(v, verify.Optional())(home)

	get(h, "/", pasee.accessToken("kisee-alice"))
	get(h, "/", "")
	// Output:
	// 200 hello kisee-alice
	// 200 hello stranger
}

// The group checks are methods of Identity too, for decisions inside a
// handler.
func ExampleIdentity_InGroupTree() {
	id := &verify.Identity{Subject: "kisee-ada", Groups: []string{"admin.developers", "staff"}}
	fmt.Println(id.InGroupTree("admin"), id.InGroupTree("admin.developers"), id.InGroupTree("admin.ops"))
	fmt.Println(id.HasGroup("admin"), id.HasGroup("staff"), id.AnyOf("ops", "staff"))
	// Output:
	// true true false
	// false true true
}

// VerifyRequest is the check Middleware makes, for code that answers
// refusals its own way.
func ExampleVerifier_VerifyRequest() {
	pasee := newFakePasee()
	v, _ := verify.New(context.Background(), verify.Options{PublicKeysPEM: []string{pasee.publicPEM()}, Issuer: pasee.issuer})

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	_, p := v.VerifyRequest(req)
	fmt.Println(p.Status, p.Title, errors.Is(p, verify.ErrNoToken))

	req.Header.Set("Authorization", "Bearer "+pasee.accessToken("kisee-alice", "staff"))
	id, p := v.VerifyRequest(req)
	fmt.Println(id.Subject, id.Groups, p == nil)
	// Output:
	// 401 Missing token true
	// kisee-alice [staff] true
}
