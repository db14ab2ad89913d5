// Package oidc is the "oidc" provider protocol: OpenID Connect's
// authorization code flow with PKCE. The provider's endpoints come from
// its discovery document (<issuer>/.well-known/openid-configuration),
// fetched on first use and cached; the id_token it returns is verified
// against the keys it publishes (signature, iss, aud = Pasee's client id,
// exp and iat with a leeway for clock skew, nonce). The subject is the
// id_token's "sub"; whitelisted claims come from the id_token, else from
// the userinfo endpoint.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_providers.settings] of an oidc provider.
type Options struct {
	oauth2.ClientOptions
	// Issuer is the provider's issuer URL; https except on loopback.
	Issuer string `toml:"issuer"`
	// Leeway tolerates clock skew between Pasee and the provider on the
	// id_token's exp, iat and nbf (default 30 s).
	Leeway settings.Duration `toml:"leeway"`
}

// DefaultScopes are requested when settings give none.
func DefaultScopes() []string { return []string{"openid", "email", "profile"} }

// DefaultLeeway is the clock skew tolerated on id_tokens by default.
const DefaultLeeway = 30 * time.Second

// discoveryMaxAge is how long a discovery document is trusted before it
// is fetched again (a failed refetch keeps the old one).
const discoveryMaxAge = 24 * time.Hour

// Provider is an OpenID Connect provider.
type Provider struct {
	name     string
	issuer   string
	clientID string
	secret   string
	style    string
	scopes   []string
	claims   []string
	leeway   time.Duration
	http     *http.Client
	now      func() time.Time

	mu      sync.Mutex
	disc    *discovered
	failed  time.Time
	fetches singleflight.Group // concurrent first logins share one discovery request
}

// discovered is what the discovery document gave.
type discovered struct {
	conf     *xoauth2.Config
	userinfo string
	verifier *token.Verifier
	at       time.Time
}

var _ pasee.RedirectLogin = (*Provider)(nil)

// Option configures a Provider beyond its settings.
type Option func(*Provider)

// WithClock replaces time.Now when checking id_tokens, for tests.
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// New returns the oidc provider name. Nothing is fetched yet: the
// provider being down does not stop Pasee from starting. Errors are
// *oauth2.SettingError naming the wrong key.
func New(name string, o Options, opts ...Option) (*Provider, error) {
	if o.Issuer == "" {
		return nil, &oauth2.SettingError{Key: "issuer", Msg: "missing required value: the provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration)"}
	}
	if err := oauth2.CheckURL("issuer", o.Issuer); err != nil {
		return nil, err
	}
	if strings.Contains(o.Issuer, "?") {
		return nil, &oauth2.SettingError{Key: "issuer", Msg: "an issuer URL has no query"}
	}
	id, secret, err := o.Credentials()
	if err != nil {
		return nil, err
	}
	if _, err := o.Style(xoauth2.AuthStyleInHeader); err != nil {
		return nil, err
	}
	scopes := o.Scopes
	if scopes == nil {
		scopes = DefaultScopes()
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	for i, c := range o.Claims {
		if c == "" || token.IsRegistered(c) {
			return nil, &oauth2.SettingError{Key: fmt.Sprintf("claims[%d]", i), Msg: fmt.Sprintf("%q cannot be kept: Pasee sets the registered claims itself", c)}
		}
	}
	p := &Provider{name: name, issuer: o.Issuer, clientID: id, secret: secret, style: o.AuthStyle, scopes: scopes, claims: o.Claims,
		leeway: o.Leeway.Or(DefaultLeeway), http: o.HTTPClient(), now: time.Now}
	for _, opt := range opts {
		opt(p)
	}
	return p, nil
}

// Name implements pasee.Provider.
func (p *Provider) Name() string { return p.name }

// Protocol implements pasee.Provider.
func (p *Provider) Protocol() string { return "oidc" }

// Issuer returns the configured issuer.
func (p *Provider) Issuer() string { return p.issuer }

// AuthCodeURL implements pasee.RedirectLogin.
func (p *Provider) AuthCodeURL(ctx context.Context, state, challenge, nonce, callback string) (string, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return d.conf.AuthCodeURL(state, oauth2.AuthCodeOptions(challenge, nonce, callback)...), nil
}

// Exchange implements pasee.RedirectLogin: it redeems the code, verifies
// the id_token, and completes whitelisted claims from userinfo.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce, callback string) (pasee.Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return pasee.Identity{}, err
	}
	tok, err := oauth2.Exchange(ctx, p.name, p.http, d.conf, code, verifier, callback)
	if err != nil {
		return pasee.Identity{}, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return pasee.Identity{}, fmt.Errorf("%w: %s answered no id_token (is the openid scope granted?)", pasee.ErrProviderBadAnswer, p.name)
	}
	claims, err := p.verify(ctx, d, raw, nonce)
	if err != nil {
		return pasee.Identity{}, err
	}
	id := pasee.Identity{Subject: claims.Subject}
	var missing []string
	for _, name := range p.claims {
		if v, ok := claims.Extra[name]; ok && v != nil {
			if id.Claims == nil {
				id.Claims = map[string]any{}
			}
			id.Claims[name] = v
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 && d.userinfo != "" {
		info, err := oauth2.FetchJSON(ctx, p.name, p.http, d.userinfo, tok.AccessToken)
		if err != nil {
			return pasee.Identity{}, err
		}
		// OIDC Core 5.3.2: userinfo is about the id_token's subject, or ignored.
		if sub, _ := info["sub"].(string); sub != claims.Subject {
			return pasee.Identity{}, fmt.Errorf("%w: %s's userinfo is about another subject than the id_token", pasee.ErrProviderBadAnswer, p.name)
		}
		for k, v := range oauth2.PickClaims(info, missing, "") {
			if id.Claims == nil {
				id.Claims = map[string]any{}
			}
			id.Claims[k] = v
		}
	}
	return id, nil
}

// verify checks an id_token (OIDC Core 3.1.3.7).
func (p *Provider) verify(ctx context.Context, d *discovered, raw, nonce string) (*token.Claims, error) {
	c, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrKeySetUnavailable) {
			return nil, fmt.Errorf("%w: %s's keys: %v", pasee.ErrProviderUnavailable, p.name, err)
		}
		return nil, fmt.Errorf("%w: %s returned an id_token that does not verify: %v", pasee.ErrProviderBadAnswer, p.name, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: %s returned an id_token without sub", pasee.ErrProviderBadAnswer, p.name)
	}
	if got, _ := c.String("nonce"); got != nonce || nonce == "" {
		return nil, fmt.Errorf("%w: %s returned an id_token whose nonce is not the one of this login (replayed or injected token)", pasee.ErrProviderBadAnswer, p.name)
	}
	if azp, ok := c.String("azp"); ok && azp != p.clientID {
		return nil, fmt.Errorf("%w: %s returned an id_token authorized for another client (azp)", pasee.ErrProviderBadAnswer, p.name)
	}
	if len(c.Audience) > 1 && !c.Has("azp") {
		return nil, fmt.Errorf("%w: %s returned an id_token for several audiences without azp", pasee.ErrProviderBadAnswer, p.name)
	}
	return c, nil
}

// document is the part of the discovery document Pasee reads.
type document struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
}

// discover returns the discovery document, fetching it on first use, when
// it is older than a day (keeping the old one if that fails), and at most
// once a second while the provider is failing.
func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	d, failed := p.disc, p.failed
	p.mu.Unlock()
	now := time.Now()
	if d != nil && now.Sub(d.at) < discoveryMaxAge {
		return d, nil
	}
	if d == nil && !failed.IsZero() && now.Sub(failed) < time.Second {
		return nil, fmt.Errorf("%w: %s's discovery document was unreachable a moment ago", pasee.ErrProviderUnavailable, p.name)
	}
	v, err, _ := p.fetches.Do("discovery", func() (any, error) { return p.fetch(ctx) })
	if err != nil {
		if d != nil {
			return d, nil
		}
		p.mu.Lock()
		p.failed = time.Now()
		p.mu.Unlock()
		return nil, err
	}
	fresh := v.(*discovered)
	p.mu.Lock()
	p.disc = fresh
	p.mu.Unlock()
	return fresh, nil
}

func (p *Provider) fetch(ctx context.Context) (*discovered, error) {
	href := strings.TrimSuffix(p.issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, href, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", pasee.ErrProviderBadAnswer, p.name, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %s's discovery document: %v", pasee.ErrProviderUnavailable, p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s's discovery document: %v", pasee.ErrProviderUnavailable, p.name, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: %s's discovery document: status %d", pasee.ErrProviderUnavailable, p.name, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s's discovery document: status %d at %s", pasee.ErrProviderBadAnswer, p.name, resp.StatusCode, href)
	}
	var doc document
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s's discovery document is not JSON", pasee.ErrProviderBadAnswer, p.name)
	}
	// OpenID Connect Discovery 4.3: the issuer must be the one configured.
	if strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(p.issuer, "/") {
		return nil, fmt.Errorf("%w: %s's discovery document names issuer %q, not %q", pasee.ErrProviderBadAnswer, p.name, doc.Issuer, p.issuer)
	}
	for _, e := range []struct{ key, value string }{
		{"authorization_endpoint", doc.AuthorizationEndpoint}, {"token_endpoint", doc.TokenEndpoint}, {"jwks_uri", doc.JWKSURI}, {"userinfo_endpoint", doc.UserinfoEndpoint},
	} {
		if e.value == "" && e.key == "userinfo_endpoint" {
			continue
		}
		if e.value == "" {
			return nil, fmt.Errorf("%w: %s's discovery document has no %s", pasee.ErrProviderBadAnswer, p.name, e.key)
		}
		if err := oauth2.CheckURL(e.key, e.value); err != nil {
			return nil, fmt.Errorf("%w: %s's discovery document: %v", pasee.ErrProviderBadAnswer, p.name, err)
		}
	}
	style := xoauth2.AuthStyleInHeader // client_secret_basic, the default of OIDC Core 9
	if len(doc.AuthMethods) > 0 && !slices.Contains(doc.AuthMethods, "client_secret_basic") && slices.Contains(doc.AuthMethods, "client_secret_post") {
		style = xoauth2.AuthStyleInParams
	}
	style, _ = oauth2.ClientOptions{AuthStyle: p.style}.Style(style)
	keys := token.NewRemoteKeySet(doc.JWKSURI, token.RemoteOptions{Client: p.http})
	return &discovered{
		conf: &xoauth2.Config{ClientID: p.clientID, ClientSecret: p.secret, Scopes: p.scopes,
			Endpoint: xoauth2.Endpoint{AuthURL: doc.AuthorizationEndpoint, TokenURL: doc.TokenEndpoint, AuthStyle: style}},
		userinfo: doc.UserinfoEndpoint,
		verifier: token.NewVerifier(keys, token.WithIssuer(doc.Issuer), token.WithAudience(p.clientID),
			token.WithTypes(token.TypeJWT, ""), token.WithLeeway(p.leeway), token.WithClock(p.now)),
		at: time.Now(),
	}, nil
}
