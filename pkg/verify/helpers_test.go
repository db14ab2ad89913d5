package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
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
func (s *stack) refresh(t *testing.T, refresh string) (string, string) {
	t.Helper()
	r := Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(refresh)...).WantStatus(t, 201)
	return r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)
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

// kiseeToken is an identity token straight from Kisee.
func (s *stack) kiseeToken(t *testing.T, user, password string) string {
	t.Helper()
	r := Do(t, "POST", s.kisee.URL+"/jwt/", map[string]string{"username": user, "password": password}).WantStatus(t, 201)
	return r.JSON["tokens"].([]any)[0].(string)
}

func (s *stack) verifier(t *testing.T, o verify.Options) *verify.Verifier {
	t.Helper()
	if o.JWKSURL == "" && o.PublicKeysPEM == nil && o.KeySet == nil {
		o.JWKSURL = s.pasee.URL + "/jwks.json"
	}
	if o.Issuer == "" {
		o.Issuer = s.pasee.URL
	}
	v, err := verify.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// service is a downstream service protected by the middlewares: what the
// tests call.
func service(t *testing.T, v *verify.Verifier, opts ...verify.MiddlewareOption) string {
	t.Helper()
	e := echo.New()
	auth := verify.Middleware(v, opts...)
	e.GET("/me", me, auth)
	e.HEAD("/me", me, auth)
	e.GET("/articles", me, auth, verify.RequireGroupTree("articles"))
	e.GET("/admin", me, auth, verify.RequireGroups("staff"))
	e.GET("/both", me, auth, verify.RequireAllGroups("staff", "articles.writers"))
	e.GET("/maybe", me, verify.Middleware(v, verify.Optional()))
	e.GET("/maybe/articles", me, verify.Middleware(v, verify.Optional()), verify.RequireGroupTree("articles"))
	e.GET("/forgot", me, verify.RequireGroups("staff")) // no Middleware: a programming error
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// me answers the caller's identity, or {"anonymous": true}.
func me(c echo.Context) error {
	id, ok := verify.FromContext(c)
	if !ok {
		return c.JSON(http.StatusOK, map[string]any{"anonymous": true})
	}
	ctxID, _ := verify.IdentityFrom(c.Request().Context())
	return c.JSON(http.StatusOK, map[string]any{
		"subject": id.Subject, "groups": id.Groups, "idp": id.IDP, "sid": id.SessionID,
		"same_in_request_context": ctxID == id,
	})
}

// wantRefused checks a 401 problem document with the bearer challenge.
func wantRefused(t *testing.T, r *Response, title string) {
	t.Helper()
	r.WantStatus(t, http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	wantProblem(t, r, http.StatusUnauthorized, title)
}

func wantProblem(t *testing.T, r *Response, status int, title string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if r.JSON["title"] != title || r.JSON["status"] != float64(status) || r.JSON["type"] != "about:blank" || r.JSON["_type"] != "error" {
		t.Errorf("problem = %s, want title %q status %d", r.Body, title, status)
	}
	if meta, _ := r.JSON["_meta"].(map[string]any); meta["title"] != title {
		t.Errorf("_meta = %v", r.JSON["_meta"])
	}
}

// jwks is a JWK Set server whose keys a test changes, counting fetches.
type jwks struct {
	URL     string
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int32
	fail    atomic.Bool
}

func newJWKS(t *testing.T, keys ...*token.PublicKey) *jwks {
	t.Helper()
	j := &jwks{}
	j.set(t, keys...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		if j.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*j.doc.Load())
	}))
	t.Cleanup(srv.Close)
	j.URL = srv.URL + "/jwks.json"
	return j
}

func (j *jwks) set(t *testing.T, keys ...*token.PublicKey) {
	t.Helper()
	doc, err := token.MarshalJWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	j.doc.Store(&doc)
}

// clock is a settable time for the verifier's cache and expiry checks.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// accessClaims are the claims of a Pasee access token of issuer for sub.
func accessClaims(issuer, sub string, now time.Time, groups ...string) token.Claims {
	c := token.Claims{Issuer: issuer, Subject: sub, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), ID: "0123456789abcdef"}
	if groups == nil {
		groups = []string{}
	}
	c.Set("groups", groups)
	c.Set("idp", "kisee")
	c.Set("sid", "session-1")
	return c
}

func mustKey(t testing.TB, alg token.Algorithm) *token.PrivateKey {
	t.Helper()
	k, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, k *token.PrivateKey, typ string, claims any) string {
	t.Helper()
	s, err := token.NewSigner(k).Sign(typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge signs header and claims with a fresh P-256 key that is not
// Pasee's, writing whatever header the attacker likes (Pasee's kid...).
func forge(t *testing.T, header map[string]any, claims any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	input := encode(t, header, claims)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hmacWith signs with HS256 using secret: the algorithm-confusion attack,
// where the secret is the issuer's public key.
func hmacWith(t *testing.T, secret []byte, header map[string]any, claims any) string {
	t.Helper()
	input := encode(t, header, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func encode(t *testing.T, header map[string]any, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
}
