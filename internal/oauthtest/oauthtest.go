// Package oauthtest is a small but honest OAuth 2.0 authorization server and
// OpenID Connect provider, served over real HTTP inside a test, for the
// tests of Pasee's oauth2 and oidc providers and of its browser flow.
//
// It checks what a real provider checks: the client id and secret (HTTP
// Basic or form, as configured), that redirect_uri is registered exactly and
// repeated identically at the token endpoint, the PKCE verifier against the
// S256 challenge, that a code is used once and within a minute, and that
// userinfo gets a valid access token. It issues id_tokens signed with its own
// key, published at its JWKS and discovery document, carrying the nonce.
//
// Three shapes mimic the providers Pasee has presets for: GitHub (numeric
// "id" and "login" at the user API, token answers form-encoded), Twitter
// (PKCE required, client authentication by HTTP Basic only, the user under
// "data") and OIDC (standard claims, id_token). Hooks let a test play a
// misbehaving provider: skewed clock, tampered id_token, wrong audience,
// canned answers, denial by the user, or being down.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Shape is the kind of provider the server plays.
type Shape string

// The shapes.
const (
	GitHub  Shape = "github"
	Twitter Shape = "twitter"
	OIDC    Shape = "oidc"
)

// Client authentication methods at the token endpoint.
const (
	AuthBasic = "basic" // client_secret_basic
	AuthPost  = "post"  // client_secret_post
)

// User is the person who logs in at the provider.
type User struct {
	ID    string // stable id: a number for GitHub, an opaque string elsewhere
	Login string // changeable handle (GitHub login, Twitter username)
	Name  string
	Email string
}

// Options configure a server.
type Options struct {
	Shape        Shape
	ClientID     string // default "pasee-client"
	ClientSecret string // default "s3cret-of-pasee"
	// RedirectURIs are the registered callback URLs, compared exactly.
	RedirectURIs []string
	// RequirePKCE refuses authorization requests without an S256 challenge
	// (always true for Twitter).
	RequirePKCE bool
	// ClientAuth is the accepted client authentication: AuthBasic, AuthPost,
	// or "" for both (Twitter: AuthBasic).
	ClientAuth string
	// Interactive makes GET /authorize show a consent page with "Allow" and
	// "Deny" buttons (for browser tests) instead of deciding at once.
	Interactive bool
	// User is who logs in; default a user whose id fits the shape.
	User User
}

// Server is a running authorization server.
type Server struct {
	// URL is the server's base URL, which is also its OIDC issuer.
	URL string

	srv  *httptest.Server
	opts Options
	key  *token.PrivateKey

	mu          sync.Mutex
	user        User
	deny        bool
	now         func() time.Time
	idTokenHook func(*token.Claims)
	rawHook     func(string) string
	signWith    *token.PrivateKey
	canned      map[string]canned
	pending     map[string]url.Values
	codes       map[string]*grant
	access      map[string]User
	authorizeQ  []url.Values
	tokenForms  []url.Values
}

type canned struct {
	status int
	body   string
}

// grant is an authorization code issued at /authorize.
type grant struct {
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	user        User
	expires     time.Time
	used        bool
	tokens      []string
}

// Start serves a new authorization server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Shape == "" {
		o.Shape = OIDC
	}
	if o.ClientID == "" {
		o.ClientID = "pasee-client"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "s3cret-of-pasee"
	}
	if o.Shape == Twitter {
		o.RequirePKCE = true
		o.ClientAuth = AuthBasic
	}
	if o.User.ID == "" {
		o.User = DefaultUser(o.Shape)
	}
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: o, key: key, user: o.User, now: time.Now,
		canned: map[string]canned{}, pending: map[string]url.Values{}, codes: map[string]*grant{}, access: map[string]User{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /authorize", s.decide)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	mux.HandleFunc("GET /jwks.json", s.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	s.srv = httptest.NewServer(s.withCanned(mux))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// DefaultUser is the user of a shape when Options.User is empty.
func DefaultUser(shape Shape) User {
	switch shape {
	case GitHub:
		return User{ID: "583231", Login: "octocat", Name: "The Octocat", Email: "octocat@example.com"}
	case Twitter:
		return User{ID: "2244994945", Login: "TwitterDev", Name: "Twitter Dev"}
	}
	return User{ID: "248289761001", Login: "jane", Name: "Jane Doe", Email: "jane@example.com"}
}

// Endpoints.

// AuthURL is the authorization endpoint.
func (s *Server) AuthURL() string { return s.URL + "/authorize" }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// UserinfoURL is the userinfo (user API) endpoint.
func (s *Server) UserinfoURL() string { return s.URL + "/userinfo" }

// JWKSURL is where the signing keys are published.
func (s *Server) JWKSURL() string { return s.URL + "/jwks.json" }

// ClientID is the registered client's id.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret is the registered client's secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Key is the key id_tokens are signed with.
func (s *Server) Key() *token.PrivateKey { return s.key }

// Close stops the server: the provider is down.
func (s *Server) Close() { s.srv.Close() }

// SetUser changes who logs in next.
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// SetDeny makes the user decline (true) or accept (false) at the next
// authorization requests.
func (s *Server) SetDeny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// SetRedirectURIs replaces the registered callback URLs (a test often knows
// Pasee's address only after starting the provider).
func (s *Server) SetRedirectURIs(uris ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RedirectURIs = uris
}

// SetClock sets the provider's clock (iat and exp of id_tokens).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetIDTokenHook lets a test change the claims of the next id_tokens.
func (s *Server) SetIDTokenHook(f func(*token.Claims)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idTokenHook = f
}

// SetSigningKey makes the next id_tokens signed with key instead of the
// published one (a forged token).
func (s *Server) SetSigningKey(key *token.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signWith = key
}

// SetIDTokenTransform lets a test rewrite the next id_tokens as signed
// (to break their signature, say).
func (s *Server) SetIDTokenTransform(f func(string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rawHook = f
}

// SetAnswer makes the endpoint at path ("/token", "/userinfo", "/jwks.json",
// "/.well-known/openid-configuration") answer status and body as is;
// status 0 restores the real behaviour.
func (s *Server) SetAnswer(path string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.canned, path)
		return
	}
	s.canned[path] = canned{status: status, body: body}
}

// AuthorizeRequests returns the query of every authorization request.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.authorizeQ)
}

// TokenRequests returns the form of every token request.
func (s *Server) TokenRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokenForms)
}

func (s *Server) withCanned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		c, ok := s.canned[r.URL.Path]
		s.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// authorize is the authorization endpoint (RFC 6749 4.1.1, RFC 7636).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.authorizeQ = append(s.authorizeQ, q)
	registered := slices.Contains(s.opts.RedirectURIs, q.Get("redirect_uri"))
	interactive := s.opts.Interactive
	s.mu.Unlock()
	// An unknown client or redirect URI is never redirected to (RFC 6749 4.1.2.1).
	if q.Get("client_id") != s.opts.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if !registered {
		http.Error(w, "redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		redirect(w, r, q.Get("redirect_uri"), url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}})
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only the code flow is supported")
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case s.opts.RequirePKCE && q.Get("code_challenge") == "":
		fail("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256")
		return
	case s.opts.Shape == OIDC && !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail("invalid_scope", "the openid scope is required")
		return
	}
	if interactive {
		id := randomString()
		s.mu.Lock()
		s.pending[id] = q
		user := s.user
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = consent.Execute(w, map[string]string{"ID": id, "Client": q.Get("client_id"), "User": user.Login, "Scope": q.Get("scope")})
		return
	}
	s.mu.Lock()
	deny := s.deny
	s.mu.Unlock()
	s.finish(w, r, q, !deny)
}

// decide is the consent page's answer.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	q, ok := s.pending[r.PostForm.Get("request")]
	delete(s.pending, r.PostForm.Get("request"))
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown or already answered authorization request", http.StatusBadRequest)
		return
	}
	s.finish(w, r, q, r.PostForm.Get("decision") == "allow")
}

// finish sends the browser back to the client with a code, or with
// access_denied.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, q url.Values, allow bool) {
	back := url.Values{}
	if q.Has("state") {
		back.Set("state", q.Get("state"))
	}
	if !allow {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user has denied your application access.")
		redirect(w, r, q.Get("redirect_uri"), back)
		return
	}
	code := randomString()
	s.mu.Lock()
	s.codes[code] = &grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scope: q.Get("scope"), user: s.user, expires: time.Now().Add(time.Minute)}
	s.mu.Unlock()
	back.Set("code", code)
	redirect(w, r, q.Get("redirect_uri"), back)
}

func redirect(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+params.Encode(), http.StatusFound)
}

var consent = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize {{.Client}}</title></head>
<body>
<h1>Authorize {{.Client}}?</h1>
<p>Signed in as <b id="user">{{.User}}</b>. {{.Client}} asks for: {{.Scope}}</p>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="{{.ID}}">
<button id="allow" name="decision" value="allow">Allow</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form>
</body></html>
`))

// tokenError answers an RFC 6749 5.2 error.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// clientAuth authenticates the client of a token request.
func (s *Server) clientAuth(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 2.3.1: both are form-urlencoded before Basic encoding.
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
		if s.opts.ClientAuth == AuthPost {
			return "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if s.opts.ClientAuth == AuthBasic || secret == "" {
			return "", false
		}
	}
	ok := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
	return id, ok
}

// token is the token endpoint (RFC 6749 4.1.3, RFC 7636 4.6).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	s.mu.Lock()
	s.tokenForms = append(s.tokenForms, r.PostForm)
	s.mu.Unlock()
	client, ok := s.clientAuth(r)
	if !ok {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[r.PostForm.Get("code")]
	switch {
	case !ok:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
		return
	case g.used:
		// RFC 6749 4.1.2: a replayed code revokes what it gave.
		for _, t := range g.tokens {
			delete(s.access, t)
		}
		tokenError(w, http.StatusBadRequest, "invalid_grant", "authorization code already used")
		return
	case time.Now().After(g.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
		return
	case g.clientID != client:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "authorization code issued to another client")
		return
	case r.PostForm.Get("redirect_uri") != g.redirectURI:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	}
	g.used = true
	if g.challenge != "" {
		v := r.PostForm.Get("code_verifier")
		sum := sha256.Sum256([]byte(v))
		if v == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed: code_verifier does not match code_challenge")
			return
		}
	}
	access := randomString()
	s.access[access] = g.user
	g.tokens = append(g.tokens, access)
	answer := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": 3600, "scope": g.scope}
	if s.opts.Shape == OIDC && slices.Contains(strings.Fields(g.scope), "openid") {
		idt, err := s.idToken(g)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		answer["id_token"] = idt
	}
	w.Header().Set("Cache-Control", "no-store")
	if s.opts.Shape == GitHub && !strings.Contains(r.Header.Get("Accept"), "json") {
		// GitHub answers form-encoded unless asked for JSON.
		form := url.Values{"access_token": {access}, "token_type": {"bearer"}, "scope": {g.scope}}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = w.Write([]byte(form.Encode()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// idToken signs an OIDC id_token for g (called with s.mu held).
func (s *Server) idToken(g *grant) (string, error) {
	now := s.now().Truncate(time.Second)
	c := token.Claims{Issuer: s.URL, Subject: g.user.ID, Audience: []string{g.clientID}, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	if g.nonce != "" {
		c.Set("nonce", g.nonce)
	}
	c.Set("email", g.user.Email)
	c.Set("preferred_username", g.user.Login)
	if s.idTokenHook != nil {
		s.idTokenHook(&c)
	}
	key := s.key
	if s.signWith != nil {
		key = s.signWith
	}
	raw, err := token.NewSigner(key).Sign(token.TypeJWT, c)
	if err != nil {
		return "", fmt.Errorf("sign id_token: %w", err)
	}
	if s.rawHook != nil {
		raw = s.rawHook(raw)
	}
	return raw, nil
}

// userinfo is the user API: GitHub's /user, Twitter's /2/users/me, or
// OIDC's userinfo endpoint.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	u, known := s.access[raw]
	s.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, `{"message": "Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var body any
	switch s.opts.Shape {
	case GitHub:
		id, err := strconv.ParseInt(u.ID, 10, 64)
		if err != nil {
			http.Error(w, "GitHub ids are numbers", http.StatusInternalServerError)
			return
		}
		body = map[string]any{"id": id, "login": u.Login, "name": u.Name, "email": u.Email, "type": "User"}
	case Twitter:
		body = map[string]any{"data": map[string]any{"id": u.ID, "username": u.Login, "name": u.Name}}
	default:
		body = map[string]any{"sub": u.ID, "preferred_username": u.Login, "name": u.Name, "email": u.Email}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	b, err := token.MarshalJWKS(s.key.Public())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	methods := []string{"client_secret_basic", "client_secret_post"}
	switch s.opts.ClientAuth {
	case AuthBasic:
		methods = methods[:1]
	case AuthPost:
		methods = methods[1:]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.AuthURL(),
		"token_endpoint":                        s.TokenURL(),
		"userinfo_endpoint":                     s.UserinfoURL(),
		"jwks_uri":                              s.JWKSURL(),
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(s.key.Algorithm())},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": methods,
		"scopes_supported":                      []string{"openid", "email", "profile"},
	})
}
