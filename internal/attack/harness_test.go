package attack

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Passwords of the seeded users (backendtest.Users) and the front-end
// origin and redirect URI the services allow.
const (
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
	appOrigin     = "https://app.example.com"
	appCallback   = "https://app.example.com/callback"
	evilOrigin    = "https://evil.example"
	audience      = "api.example.com"
)

// serve runs s behind the production http.Server settings (header limits,
// timeouts: web.Server.Serve) on a fresh listener until the test ends, and
// returns its base URL. kiseetest and paseetest serve through httptest,
// whose server has Go's defaults; the attacks on sizes need the real ones.
func serve(t testing.TB, s *web.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// evilServer is the attacker's web server: the target of jku, x5u and
// URL-shaped kids, and a provider whose /jwks.json holds a malformed key.
// Hits counts the requests it got: a verifier that follows a token's
// pointers shows up there.
type evilServer struct {
	*httptest.Server
	hits atomic.Int64
	// jwks is the attacker's own key set, served at /jwks.json.
	jwks []byte
}

func startEvil(t *testing.T, attacker *token.PrivateKey) *evilServer {
	t.Helper()
	e := &evilServer{}
	var err error
	if e.jwks, err = token.MarshalJWKS(attacker.Public()); err != nil {
		t.Fatal(err)
	}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			// The JSON-Home of a provider whose keys are unusable: its
			// JWKS holds a P-256 key whose y is 33 bytes long (what
			// FuzzParseJWKS found).
			w.Header().Set("Content-Type", "application/json-home")
			fmt.Fprintf(w, `{"resources":{"jwt":{"href":"/jwt/"},"jwks":{"href":"/bad-jwks.json"}}}`)
		case "/bad-jwks.json":
			_, _ = w.Write([]byte(`{"keys":[{"crv":"P-256","kty":"EC","x":"","y":"00000000000000000000000000000000000000000000"}]}`))
		default:
			e.hits.Add(1)
			_, _ = w.Write(e.jwks)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

// env is a Kisee (sql backend, registration and password recovery on)
// and a Pasee above it, each reachable through the production server
// settings, with the tokens the attacks start from.
type env struct {
	store        paseetest.Store
	kisee        *kiseetest.Server
	pasee        *paseetest.Server
	kiseeURL     string // production http.Server
	paseeURL     string
	smtp         *smtptest.Server
	evil         *evilServer
	github       *oauthtest.Server // an OAuth2 provider (GitHub-like) of Pasee
	attacker     *token.PrivateKey // a key of the attacker's, ES256
	rotatedTo    *token.PrivateKey // the key Pasee's "rotated" provider trusts instead of Kisee's
	kiseeKey     *ecdsa.PrivateKey
	paseeKey     *ecdsa.PrivateKey
	aliceID      string // a Kisee identity token of alice
	aliceJTI     string
	aliceReset   string // a Kisee password-reset token for alice
	alice, bob   pair   // Pasee pairs; bob is staff
	bobControl   pair   // another session of bob, spent by the control cases
	pgKiseeStore string // the PostgreSQL URL of Kisee, when store is Postgres
}

type pair struct{ access, refresh string }

func startEnv(t *testing.T, store paseetest.Store) *env {
	t.Helper()
	e := &env{store: store, smtp: smtptest.Start(t, smtptest.Options{})}
	var err error
	if e.attacker, err = token.GenerateKey(token.ES256); err != nil {
		t.Fatal(err)
	}
	if e.rotatedTo, err = token.GenerateKey(token.ES256); err != nil {
		t.Fatal(err)
	}
	e.evil = startEvil(t, e.attacker)
	e.github = oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})

	kiseeDB := ""
	if store == paseetest.Postgres {
		e.pgKiseeStore = pgtest.URL(t)
		kiseeDB = fmt.Sprintf("[identity_backend.options]\nurl = %q\n[storage]\nurl = %q\n", e.pgKiseeStore, e.pgKiseeStore)
	}
	e.kisee = kiseetest.StartSQL(t, kiseeDB+fmt.Sprintf(`[server]
trusted_proxies = ["127.0.0.1"]
[registration]
enabled = true
[rate_limit]
max_failures = 100000
[cors]
allowed_origins = [%q]
[email]
host = %q
port = %d
sender = "kisee@example.com"
security = "none"
attempts = 2
retry_delay = "10ms"
`, appOrigin, e.smtp.Host, e.smtp.Port))
	e.kiseeURL = serve(t, e.kisee.App.Server)
	e.kiseeKey = ecdsaKey(t, e.kisee.Key)

	rotatedPEM, _ := e.rotatedTo.Public().MarshalPEM()
	doc := fmt.Sprintf(`trusted_proxies = ["127.0.0.1"]
[jwt]
audience = %q
[cors]
allowed_origins = [%q]
allowed_redirect_uris = [%q]
[rate_limit]
max_failures = 100000
`, audience, appOrigin, appCallback) + paseetest.KiseeProvider("kisee", e.kisee.URL) +
		fmt.Sprintf("[[identity_providers]]\nname = \"rotated\"\nprotocol = \"kisee\"\nendpoint = %q\n[identity_providers.settings]\npublic_keys = ['''%s''']\n", e.kisee.URL, rotatedPEM) +
		fmt.Sprintf("[[identity_providers]]\nname = \"evil\"\nprotocol = \"kisee\"\nendpoint = %q\n[identity_providers.settings]\ntimeout = \"2s\"\n", e.evil.URL) +
		fmt.Sprintf("[[identity_providers]]\nname = \"github\"\nprotocol = \"oauth2\"\n[identity_providers.settings]\npreset = \"github\"\napp_id = %q\napp_secret = %q\nauth_url = %q\ntoken_url = %q\nuserinfo_url = %q\n",
			e.github.ClientID(), e.github.ClientSecret(), e.github.AuthURL(), e.github.TokenURL(), e.github.UserinfoURL())
	e.pasee = paseetest.Start(t, store, doc+paseetest.IntrospectionClient)
	e.github.SetRedirectURIs(e.pasee.URL + "/tokens/?idp=github")
	e.paseeURL = serve(t, e.pasee.App.Server)
	e.paseeKey = ecdsaKey(t, e.pasee.Key)

	ctx := context.Background()
	now := time.Now()
	if err := e.pasee.App.Store.AddMember(ctx, "test", "staff", "kisee-bob", now); err != nil {
		t.Fatal(err)
	}
	e.aliceID = e.kiseeLogin(t, "alice", alicePassword)
	e.aliceJTI = claimsOf(t, e.aliceID)["jti"].(string)
	e.alice = e.paseeLogin(t, "alice", alicePassword)
	e.bob = e.paseeLogin(t, "bob", bobPassword)
	e.bobControl = e.paseeLogin(t, "bob", bobPassword)
	e.aliceReset = e.resetToken(t, "alice")
	return e
}

func (e *env) url(svc string) string {
	if svc == "kisee" {
		return e.kiseeURL
	}
	return e.paseeURL
}

func (e *env) kiseeLogin(t *testing.T, user, pw string) string {
	t.Helper()
	r := do(t, "POST", e.kiseeURL+"/jwt/", map[string]string{"username": user, "password": pw})
	toks, _ := r.json["tokens"].([]any)
	if r.status != 201 || len(toks) != 1 {
		t.Fatalf("Kisee login %s: %d %s", user, r.status, r.body)
	}
	return toks[0].(string)
}

func (e *env) paseeLogin(t *testing.T, user, pw string) pair {
	t.Helper()
	r := do(t, "POST", e.paseeURL+"/tokens/?idp=kisee", map[string]string{"login": user, "password": pw})
	if r.status != 201 {
		t.Fatalf("Pasee login %s: %d %s", user, r.status, r.body)
	}
	return pair{r.json["access_token"].(string), r.json["refresh_token"].(string)}
}

var tokenInLink = regexp.MustCompile(`token=([A-Za-z0-9_.-]+)`)

// resetToken asks Kisee for a password-reset email for user and returns
// the token of its link.
func (e *env) resetToken(t *testing.T, user string) string {
	t.Helper()
	n := len(e.smtp.Messages())
	if r := do(t, "POST", e.kiseeURL+"/password_recoveries/", map[string]string{"username": user}); r.status != 201 {
		t.Fatalf("recovery: %d %s", r.status, r.body)
	}
	m := e.smtp.Wait(t, n+1, 15*time.Second)[n]
	found := tokenInLink.FindStringSubmatch(m.Body)
	if found == nil {
		t.Fatalf("no token in the email:\n%s", m.Body)
	}
	return found[1]
}

// ecdsaKey extracts the P-256 key of a service, to forge tokens with it.
func ecdsaKey(t *testing.T, k *token.PrivateKey) *ecdsa.PrivateKey {
	t.Helper()
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

var b64 = base64.RawURLEncoding

// claimsOf decodes the payload of a compact JWS, without verifying it.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	p, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// headerOf decodes the header of a compact JWS.
func headerOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, err := b64.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(h, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// signer computes a JWS signature over the signing input.
type signer func(input []byte) []byte

// jws serializes header and claims and signs them with sign.
func jws(header, claims map[string]any, sign signer) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

func es256(k *ecdsa.PrivateKey) signer {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func hs256(secret []byte) signer {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

// rawSigner signs with any crypto.Signer (RSA PKCS #1 v1.5, Ed25519).
func rawSigner(k crypto.Signer, hash crypto.Hash) signer {
	return func(input []byte) []byte {
		digest := input
		if hash != 0 {
			h := hash.New()
			h.Write(input)
			digest = h.Sum(nil)
		}
		sig, err := k.Sign(rand.Reader, digest, hash)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func noSignature([]byte) []byte { return nil }

// with returns a copy of m with the given keys set (a nil value deletes).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// newClient returns a client that never follows redirects: an attack
// answered with a redirect must be seen as one.
func newClient() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request (body: nil, string, []byte or a value sent as JSON;
// headers as name, value pairs) and reads the answer.
func do(t testing.TB, method, url string, body any, headers ...string) *response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: raw}
	_ = json.Unmarshal(raw, &out.json)
	return out
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func basic(user, pass string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// problemError explains why r is not the problem document SPEC promises
// (RFC 9457, application/problem+json, a title and a detail), or is nil.
func problemError(r *response) error {
	var errs []error
	if ct := r.header.Get("Content-Type"); ct != web.ProblemContentType {
		errs = append(errs, fmt.Errorf("Content-Type %q, want %s", ct, web.ProblemContentType))
	}
	if title, _ := r.json["title"].(string); title == "" {
		errs = append(errs, errors.New("no title"))
	}
	if detail, _ := r.json["detail"].(string); detail == "" {
		errs = append(errs, errors.New("no detail"))
	}
	if st, _ := r.json["status"].(float64); int(st) != r.status {
		errs = append(errs, fmt.Errorf("status member %v, want %d", r.json["status"], r.status))
	}
	if r.json["type"] != "about:blank" || r.json["_type"] != "error" {
		errs = append(errs, fmt.Errorf("type %v, _type %v", r.json["type"], r.json["_type"]))
	}
	return errors.Join(errs...)
}

// securityHeaderError explains which security header of an API answer is
// missing or wrong, or is nil. Every answer is nosniff and frame-deny with
// a CSP forbidding everything; JSON answers are not cached unless public.
func securityHeaderError(r *response) error {
	var errs []error
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := r.header.Get(name); got != want {
			errs = append(errs, fmt.Errorf("%s %q, want %q", name, got, want))
		}
	}
	// JSON gets the strictest policy; a page (Kisee's /status) may allow
	// its own inline style, never anything else, and is never framed.
	csp := r.header.Get("Content-Security-Policy")
	switch ct := r.header.Get("Content-Type"); {
	case ct == "" || strings.Contains(ct, "json"):
		if csp != "default-src 'none'; frame-ancestors 'none'" {
			errs = append(errs, fmt.Errorf("Content-Security-Policy %q on %q", csp, ct))
		}
	default:
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			errs = append(errs, fmt.Errorf("Content-Security-Policy %q on %q", csp, ct))
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" && cc != "public, max-age=300" {
		errs = append(errs, fmt.Errorf("Cache-Control %q", cc))
	}
	return errors.Join(errs...)
}

// healthy fails the test unless GET /health of url answers 200 green.
func healthy(t *testing.T, url string) {
	t.Helper()
	r := do(t, "GET", url+"/health", nil)
	if r.status != 200 || r.json["status"] != "green" {
		t.Fatalf("%s/health after the attack: %d %s", url, r.status, r.body)
	}
}
