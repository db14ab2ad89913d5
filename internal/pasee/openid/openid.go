// Package openid makes Pasee an OpenID Provider: off-the-shelf clients
// (oauth2-proxy, Grafana, kubectl oidc-login, go-oidc, oidc-client-ts) log
// users in through Pasee with standard OpenID Connect and receive Pasee's
// groups.
//
// It serves discovery (<issuer>/.well-known/openid-configuration), the
// authorization endpoint with its server-rendered login page (one form
// per password provider, one button per redirect provider, which runs the
// browser flow of package flow and comes back), a single sign-on cookie,
// the token endpoint (authorization_code and refresh_token grants),
// userinfo, RFC 7009 revocation, RFC 7662 introspection and RP-initiated
// logout, under <hostname>/oidc/.
//
// Sessions are Pasee's own: a login here opens a refresh session through
// pasee.Service, exactly as POST /tokens/ does, whose access token carries
// client_id and scope; refreshing it goes through Service.Refresh, with the
// same rotation, reuse detection and grace. What is the provider's alone
// (pending requests, single sign-on sessions, codes) lives in Storage.
package openid

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Client is a relying party declared in [[clients]].
type Client struct {
	ID     string
	Secret string // "": a public client, which must use PKCE S256
	Name   string // shown on the login page
	// RedirectURIs and PostLogoutRedirectURIs are compared exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// RS256 asks for ID tokens signed with the RSA key.
	RS256 bool
}

// Public reports whether c has no secret.
func (c *Client) Public() bool { return c.Secret == "" }

// Defaults of Config.
const (
	DefaultCodeTTL    = 60 * time.Second
	DefaultRequestTTL = 15 * time.Minute
	DefaultSSOTTL     = 12 * time.Hour
	DefaultIDTokenTTL = time.Hour
)

// Paths of the endpoints, below hostname.
const (
	PathAuthorize  = "/oidc/authorize"
	PathLogin      = "/oidc/login"
	PathCallback   = "/oidc/callback"
	PathToken      = "/oidc/token"
	PathUserinfo   = "/oidc/userinfo"
	PathRevoke     = "/oidc/revoke"
	PathIntrospect = "/oidc/introspect"
	PathLogout     = "/oidc/logout"
	DiscoveryPath  = "/.well-known/openid-configuration"
)

// Config is what a Provider is built from.
type Config struct {
	Service *pasee.Service
	Storage *Storage
	// Flow and FlowStorage run the browser flow of redirect providers;
	// nil without any.
	Flow        *flow.Flow
	FlowStorage flow.Storage
	Keys        token.KeyRing
	// RSAKey signs the ID tokens of clients asking for RS256.
	RSAKey       *token.PrivateKey
	LegacyES256K bool
	// Issuer is the OpenID issuer (iss of every token); PublicURL is
	// Pasee's hostname, under which the endpoints are.
	Issuer    string
	PublicURL string
	Clients   []Client
	AccessTTL time.Duration
	SSOTTL    time.Duration // default DefaultSSOTTL
	CodeTTL   time.Duration // default DefaultCodeTTL
	Now       func() time.Time
	Logger    *slog.Logger
	// Registerer receives the provider's metrics; nil: none.
	Registerer prometheus.Registerer
}

// Provider is Pasee's OpenID Provider.
type Provider struct {
	svc         *pasee.Service
	store       *Storage
	flow        *flow.Flow
	flowStore   flow.Storage
	clients     map[string]*Client
	signer      *token.Signer
	rsaSigner   *token.Signer
	access      *token.Verifier
	refresh     *token.Verifier
	idHints     *token.Verifier
	issuer      string
	public      string
	accessTTL   time.Duration
	ssoTTL      time.Duration
	codeTTL     time.Duration
	secure      bool
	cookiePath  string
	now         func() time.Time
	logger      *slog.Logger
	metrics     metrics
	discovery   []byte
	passwordIDP []pasee.Provider
	redirectIDP []pasee.Provider
}

// New returns the provider of cfg.
func New(cfg Config) (*Provider, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	public := strings.TrimSuffix(cfg.PublicURL, "/")
	p := &Provider{
		svc: cfg.Service, store: cfg.Storage, flow: cfg.Flow, flowStore: cfg.FlowStorage,
		clients: map[string]*Client{},
		signer:  token.NewSigner(cfg.Keys.Current, token.WithLegacyES256K(cfg.LegacyES256K)),
		issuer:  strings.TrimSuffix(cfg.Issuer, "/"), public: public,
		accessTTL: or(cfg.AccessTTL, 15*time.Minute), ssoTTL: or(cfg.SSOTTL, DefaultSSOTTL), codeTTL: or(cfg.CodeTTL, DefaultCodeTTL),
		secure: strings.HasPrefix(cfg.Issuer, "https://"),
		now:    cfg.Now, logger: cfg.Logger, metrics: newMetrics(cfg.Registerer),
	}
	if u, err := url.Parse(public); err == nil {
		p.cookiePath = strings.TrimSuffix(u.Path, "/") + "/oidc/"
	} else {
		return nil, fmt.Errorf("openid: hostname %q: %w", public, err)
	}
	if cfg.RSAKey != nil {
		p.rsaSigner = token.NewSigner(cfg.RSAKey)
	}
	for i := range cfg.Clients {
		c := cfg.Clients[i]
		if c.RS256 && p.rsaSigner == nil {
			return nil, fmt.Errorf("openid: client %s asks for RS256 ID tokens but no RSA key is configured", c.ID)
		}
		p.clients[c.ID] = &c
	}
	keys := cfg.Keys.KeySet()
	common := []token.VerifierOption{token.WithIssuer(p.issuer), token.WithClock(cfg.Now), token.AcceptLegacyES256K(cfg.LegacyES256K)}
	p.access = token.NewVerifier(keys, append(slices.Clone(common), token.WithTypes(token.TypeAccess))...)
	p.refresh = token.NewVerifier(keys, append(slices.Clone(common), token.WithTypes(token.TypeRefresh))...)
	// An id_token_hint may have expired: RP-initiated logout accepts it
	// for as long as a single sign-on session lasts.
	p.idHints = token.NewVerifier(keys, append(slices.Clone(common), token.WithTypes(token.TypeJWT), token.WithLeeway(p.ssoTTL))...)
	for _, prov := range cfg.Service.Providers() {
		if _, ok := prov.(pasee.PasswordLogin); ok {
			p.passwordIDP = append(p.passwordIDP, prov)
		} else if _, ok := prov.(pasee.RedirectLogin); ok && cfg.Flow != nil && cfg.FlowStorage != nil {
			p.redirectIDP = append(p.redirectIDP, prov)
		}
	}
	var err error
	if p.discovery, err = p.discoveryDocument(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CallbackURL is where the browser flow of a redirect provider brings the
// user back to the pending authorization: it must be among the flow's
// allowed redirect URIs.
func CallbackURL(publicURL string) string { return strings.TrimSuffix(publicURL, "/") + PathCallback }

// Register adds the provider's routes to s.
func (p *Provider) Register(s *web.Server) {
	prefix := strings.TrimPrefix(p.issuer, p.public) // "" or the issuer's path below hostname
	s.Route(http.MethodGet, prefix+DiscoveryPath, p.getDiscovery)
	s.Route(http.MethodGet, PathAuthorize, p.authorize)
	s.Route(http.MethodPost, PathAuthorize, p.authorize)
	s.Route(http.MethodPost, PathLogin, p.login)
	s.Route(http.MethodGet, PathLogin, p.startRedirect)
	s.Route(http.MethodGet, PathCallback, p.callback)
	s.Route(http.MethodPost, PathToken, p.token)
	s.Route(http.MethodGet, PathUserinfo, p.userinfo)
	s.Route(http.MethodPost, PathUserinfo, p.userinfo)
	s.Route(http.MethodPost, PathRevoke, p.revoke)
	s.Route(http.MethodPost, PathIntrospect, p.introspect)
	s.Route(http.MethodGet, PathLogout, p.logout)
	s.Route(http.MethodPost, PathLogout, p.logout)
}

func (p *Provider) url(path string) string { return p.public + path }

// scopesSupported are the scopes Pasee grants; others are ignored.
var scopesSupported = []string{"openid", "email", "profile", "groups", "offline_access"}

// Claims released by scope, from the provider's whitelisted claims.
var (
	emailClaims   = []string{"email", "email_verified"}
	profileClaims = []string{"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"}
)

func (p *Provider) discoveryDocument(cfg Config) ([]byte, error) {
	algs := []string{string(cfg.Keys.Current.Algorithm())}
	if cfg.RSAKey != nil && !slices.Contains(algs, string(token.RS256)) {
		algs = append(algs, string(token.RS256))
	}
	claims := append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "groups"}, emailClaims...)
	claims = append(claims, profileClaims...)
	doc := map[string]any{
		"issuer":                                        p.issuer,
		"authorization_endpoint":                        p.url(PathAuthorize),
		"token_endpoint":                                p.url(PathToken),
		"userinfo_endpoint":                             p.url(PathUserinfo),
		"jwks_uri":                                      p.url("/jwks.json"),
		"revocation_endpoint":                           p.url(PathRevoke),
		"introspection_endpoint":                        p.url(PathIntrospect),
		"end_session_endpoint":                          p.url(PathLogout),
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         algs,
		"scopes_supported":                              scopesSupported,
		"claims_supported":                              claims,
		"code_challenge_methods_supported":              []string{"S256"},
		"prompt_values_supported":                       []string{"none", "login"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"claims_parameter_supported":                    false,
		"request_parameter_supported":                   false,
		"request_uri_parameter_supported":               false,
	}
	return jsonMarshal(doc)
}

func (p *Provider) getDiscovery(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=300")
	// Browser apps (oidc-client-ts) read it from their own origin.
	h.Set("Access-Control-Allow-Origin", "*")
	return c.Blob(http.StatusOK, "application/json", p.discovery)
}

// random returns n random bytes, base64url encoded.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// audit writes an audit entry, logging (never failing the request) when
// the database refuses.
func (p *Provider) audit(ctx context.Context, actor, action, target, detail string) {
	if err := p.store.Audit(ctx, p.now(), actor, action, target, detail); err != nil {
		p.logger.WarnContext(ctx, "openid: cannot write audit entry", "action", action, "error", err)
	}
}

// Audit actions of the OpenID Provider.
const (
	ActionLogin  = "oidc.login"  // a user logged in on the login page, for a client
	ActionIssue  = "oidc.issue"  // tokens issued to a client (no consent asked)
	ActionLogout = "oidc.logout" // a single sign-on session ended
)
