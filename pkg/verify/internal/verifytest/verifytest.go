// Package verifytest holds what the tests of pkg/verify and its adapters
// share: tokens signed as Pasee signs them (and forged as an attacker
// would), a JWK Set server whose keys a test changes, a settable clock and
// checks of the problem documents. It depends on the standard library,
// pkg/token and internal/httptestutil only, so that the tests of the
// client library do not pull in the servers.
package verifytest

import (
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

	"github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Issuer is the "iss" of the tokens the tests sign.
const Issuer = "https://auth.example.com"

// WantRefused checks a 401 problem document with the bearer challenge.
func WantRefused(t testing.TB, r *httptestutil.Response, title string) {
	t.Helper()
	r.WantStatus(t, http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	WantProblem(t, r, http.StatusUnauthorized, title)
}

// WantProblem checks a problem document as Kisee and Pasee write them,
// with the "_type" and "_meta" members and Cache-Control: no-store.
func WantProblem(t testing.TB, r *httptestutil.Response, status int, title string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if r.JSON["title"] != title || r.JSON["status"] != float64(status) || r.JSON["type"] != "about:blank" || r.JSON["_type"] != "error" {
		t.Errorf("problem = %s, want title %q status %d", r.Body, title, status)
	}
	if meta, _ := r.JSON["_meta"].(map[string]any); meta["title"] != title {
		t.Errorf("_meta = %v", r.JSON["_meta"])
	}
}

// JWKS is a JWK Set server whose keys a test changes, counting fetches.
type JWKS struct {
	URL     string
	doc     atomic.Pointer[[]byte]
	Fetches atomic.Int32
	Fail    atomic.Bool
}

// NewJWKS serves keys until the test ends.
func NewJWKS(t testing.TB, keys ...*token.PublicKey) *JWKS {
	t.Helper()
	j := &JWKS{}
	j.Set(t, keys...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.Fetches.Add(1)
		if j.Fail.Load() {
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

// Set replaces the published keys.
func (j *JWKS) Set(t testing.TB, keys ...*token.PublicKey) {
	t.Helper()
	doc, err := token.MarshalJWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	j.doc.Store(&doc)
}

// Clock is a settable time for the verifier's cache and expiry checks.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// AccessClaims are the claims of a Pasee access token of issuer for sub.
func AccessClaims(issuer, sub string, now time.Time, groups ...string) token.Claims {
	c := token.Claims{Issuer: issuer, Subject: sub, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), ID: "0123456789abcdef"}
	if groups == nil {
		groups = []string{}
	}
	c.Set("groups", groups)
	c.Set("idp", "kisee")
	c.Set("sid", "session-1")
	return c
}

// MustKey generates a key of alg.
func MustKey(t testing.TB, alg token.Algorithm) *token.PrivateKey {
	t.Helper()
	k, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign signs claims with k as a token of type typ.
func Sign(t testing.TB, k *token.PrivateKey, typ string, claims any) string {
	t.Helper()
	s, err := token.NewSigner(k).Sign(typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Forge signs header and claims with a fresh P-256 key that is not the
// issuer's, writing whatever header the attacker likes (the issuer's kid...).
func Forge(t testing.TB, header map[string]any, claims any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	input := Encode(t, header, claims)
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

// HMACWith signs with HS256 using secret: the algorithm-confusion attack,
// where the secret is the issuer's public key.
func HMACWith(t testing.TB, secret []byte, header map[string]any, claims any) string {
	t.Helper()
	input := Encode(t, header, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Encode is the signing input of a JWS with header and claims.
func Encode(t testing.TB, header map[string]any, claims any) string {
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
