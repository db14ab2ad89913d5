package verifye2e

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	"github.com/kisee-pasee/suite/pkg/verify/echoverify"
)

const (
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
)

// stack is a real Kisee (alice, bob) with a real Pasee above it.
type stack struct {
	kisee *kiseetest.Server
	pasee *paseetest.Server
}

func startStack(t *testing.T) *stack {
	t.Helper()
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	return &stack{kisee: k, pasee: p}
}

// login returns the access and refresh tokens Pasee gives user.
func (s *stack) login(t *testing.T, user, password string) (access, refresh string) {
	t.Helper()
	r := Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", map[string]string{"login": user, "password": password}).WantStatus(t, 201)
	return r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)
}

// refresh trades a refresh token for a new pair, whose access token
// carries the groups as they are now.
func (s *stack) refresh(t *testing.T, refresh string) string {
	t.Helper()
	r := Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(refresh)...).WantStatus(t, 201)
	return r.JSON["access_token"].(string)
}

// addToGroups puts user in groups as `pasee append` does.
func (s *stack) addToGroups(t *testing.T, user string, groups ...string) {
	t.Helper()
	st := s.pasee.App.Store
	for _, g := range groups {
		if err := st.EnsureGroup(context.Background(), "test", g, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := st.AddMember(context.Background(), "test", g, user, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stack) verifier(t *testing.T, o verify.Options) *verify.Verifier {
	t.Helper()
	if o.PublicKeysPEM == nil {
		o.JWKSURL = s.pasee.URL + "/jwks.json"
	}
	o.Issuer = s.pasee.URL
	v, err := verify.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// services are the same downstream service on net/http and on echo.
func services(t *testing.T, v *verify.Verifier) map[string]string {
	t.Helper()
	me := func(w http.ResponseWriter, r *http.Request) {
		id, ok := verify.IdentityFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			_ = json.NewEncoder(w).Encode(map[string]any{"anonymous": true})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": id.Subject, "groups": id.Groups, "idp": id.IDP, "sid": id.SessionID})
	}
	auth := verify.Middleware(v)
	mux := http.NewServeMux()
	mux.Handle("/me", auth(http.HandlerFunc(me)))
	mux.Handle("/articles", auth(verify.RequireGroupTree("articles")(http.HandlerFunc(me))))
	mux.Handle("/admin", auth(verify.RequireGroups("staff")(http.HandlerFunc(me))))
	mux.Handle("/maybe", verify.Middleware(v, verify.Optional())(http.HandlerFunc(me)))

	e := echo.New()
	echoMe := echo.WrapHandler(http.HandlerFunc(me))
	eauth := echoverify.Middleware(v)
	e.GET("/me", echoMe, eauth)
	e.GET("/articles", echoMe, eauth, echoverify.RequireGroupTree("articles"))
	e.GET("/admin", echoMe, eauth, echoverify.RequireGroups("staff"))
	e.GET("/maybe", echoMe, echoverify.Middleware(v, echoverify.Optional()))

	urls := map[string]string{}
	for name, h := range map[string]http.Handler{"net/http": mux, "echo": e} {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}
	return urls
}

// A service behind the middlewares, with real tokens from a real Pasee:
// identity, group checks exact and by subtree, and groups that follow
// Pasee's memberships at the next token.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	s.addToGroups(t, "kisee-alice", "articles.writers")
	s.addToGroups(t, "kisee-bob", "staff")
	svcs := services(t, s.verifier(t, verify.Options{}))
	alice, aliceRefresh := s.login(t, "alice", alicePassword)
	bob, _ := s.login(t, "bob", bobPassword)
	for name, svc := range svcs {
		t.Run(name, func(t *testing.T) {
			r := Do(t, "GET", svc+"/me", nil, Bearer(alice)...).WantStatus(t, 200)
			if r.JSON["subject"] != "kisee-alice" || r.JSON["idp"] != "kisee" || r.JSON["sid"] == "" {
				t.Errorf("/me = %s", r.Body)
			}
			if g, _ := r.JSON["groups"].([]any); !reflect.DeepEqual(g, []any{"articles.writers"}) {
				t.Errorf("groups = %v, want [articles.writers]", r.JSON["groups"])
			}
			Do(t, "GET", svc+"/articles", nil, Bearer(alice)...).WantStatus(t, 200)
			Do(t, "GET", svc+"/admin", nil, Bearer(bob)...).WantStatus(t, 200)
			Do(t, "GET", svc+"/admin", nil, Bearer(alice)...).WantProblem(t, 403, "Missing group")
			Do(t, "GET", svc+"/articles", nil, Bearer(bob)...).WantProblem(t, 403, "Missing group")
			if r := Do(t, "GET", svc+"/maybe", nil).WantStatus(t, 200); r.JSON["anonymous"] != true {
				t.Errorf("/maybe anonymous = %s", r.Body)
			}
		})
	}

	// Groups travel in the token: alice's new membership shows in the
	// access token of her next refresh, not in the one she holds.
	s.addToGroups(t, "kisee-alice", "staff")
	fresh := s.refresh(t, aliceRefresh)
	for _, svc := range svcs {
		Do(t, "GET", svc+"/admin", nil, Bearer(alice)...).WantStatus(t, 403)
		Do(t, "GET", svc+"/admin", nil, Bearer(fresh)...).WantStatus(t, 200)
	}
}

// The refusals are the documents Pasee itself writes for the same token:
// same status, headers and body, on net/http and on echo.
func TestRefusalsMatchPasee(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	svcs := services(t, s.verifier(t, verify.Options{}))
	_, refresh := s.login(t, "alice", alicePassword)
	kiseeToken := Do(t, "POST", s.kisee.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).
		WantStatus(t, 201).JSON["tokens"].([]any)[0].(string)
	for name, headers := range map[string][]string{
		"missing":        nil,
		"not bearer":     {"Authorization", "Basic YWxpY2U6eA=="},
		"malformed":      Bearer("not.a-token"),
		"refresh token":  Bearer(refresh),
		"Kisee identity": Bearer(kiseeToken),
	} {
		theirs := Do(t, "GET", s.pasee.URL+"/groups/", nil, headers...).WantStatus(t, 401)
		for router, svc := range svcs {
			t.Run(name+"/"+router, func(t *testing.T) {
				ours := Do(t, "GET", svc+"/me", nil, headers...).WantStatus(t, 401)
				if !maps.EqualFunc(ours.JSON, theirs.JSON, func(a, b any) bool { return reflect.DeepEqual(a, b) }) {
					t.Errorf("our document %s\nPasee's      %s", ours.Body, theirs.Body)
				}
				for _, h := range []string{"WWW-Authenticate", "Content-Type", "Cache-Control"} {
					if ours.Header.Get(h) != theirs.Header.Get(h) {
						t.Errorf("%s: ours %q, Pasee's %q", h, ours.Header.Get(h), theirs.Header.Get(h))
					}
				}
			})
		}
	}
}

// Pinned PEM keys: Pasee's published public key verifies its real tokens,
// with the provider claims Pasee whitelists.
func TestPEMKeys(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	r := Do(t, "GET", s.pasee.URL+"/public-key/", nil).WantStatus(t, 200)
	pem := r.JSON["public_key"].(string)
	other, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := other.Public().MarshalPEM()
	v := s.verifier(t, verify.Options{PublicKeysPEM: []string{string(otherPEM), pem}})
	access, _ := s.login(t, "alice", alicePassword)
	id, err := v.Verify(context.Background(), access)
	if err != nil || id.Subject != "kisee-alice" {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	if email, _ := id.Claims.String("email"); email != "alice@example.com" {
		t.Errorf("whitelisted claim email = %q", email)
	}
}
