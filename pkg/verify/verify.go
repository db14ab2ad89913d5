// Package verify lets a Go service trust Pasee access tokens without calling
// Pasee on each request.
//
// A Verifier checks a token against Pasee's public keys — fetched from its
// JWK Set URL (cached, refetched when a token names an unknown key id, at
// most once per MinRefresh) or given as PEM — and returns the caller's
// Identity: subject ("kisee-alice"), groups, identity provider. Only access
// tokens are accepted: a refresh token, a Kisee identity token or a reset
// token is refused, whoever signed it.
//
// Middleware is net/http middleware that answers 401 problem documents, the
// same as Kisee's and Pasee's, to requests without a valid token, and puts
// the Identity in the request's context (IdentityFrom). RequireGroups and
// RequireGroupTree then answer 403 to callers outside the groups a route
// needs. The package depends on the standard library and pkg/token only;
// services on echo use the same middlewares from pkg/verify/echoverify.
//
// Groups are read from the token, so a change of membership reaches a
// service when the caller's next access token is issued (Pasee's access_ttl,
// 15 minutes by default). Services that must react at once ask Pasee
// (POST /tokens/introspect or GET /users/{name}).
package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Options configure a Verifier. Give exactly one source of keys: JWKSURL,
// PublicKeysPEM or KeySet.
type Options struct {
	// JWKSURL is Pasee's JWK Set, "https://auth.example.com/jwks.json". It
	// is fetched on first use, cached for MaxAge, and refetched when a token
	// names a key id it does not hold (a key rotation), at most once per
	// MinRefresh so that forged key ids cannot make it hammer Pasee.
	JWKSURL string
	// PublicKeysPEM are Pasee's public keys in PEM, for services that pin
	// them (list the next key here before Pasee signs with it).
	PublicKeysPEM []string
	// KeySet is any other source of keys (a token.KeyRing's set in tests).
	KeySet token.KeySet

	// Issuer is the "iss" Pasee writes: its [jwt] iss, by default its
	// public hostname ("https://auth.example.com"). Required: it keeps the
	// tokens of another Pasee out even if it shared a key.
	Issuer string
	// Audience, when set, must be one of the token's "aud" values (Pasee's
	// [jwt] audience).
	Audience string
	// Leeway tolerates clock skew on exp, nbf and iat. Zero means the
	// default, 30 s; a negative value means none.
	Leeway time.Duration
	// LegacyES256K accepts secp256k1 tokens labelled "ES256", as Pasees
	// with [jwt] legacy_es256k = true write them.
	LegacyES256K bool

	// HTTPClient fetches the JWK Set. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// MinRefresh is the least time between two fetches of the JWK Set
	// (default 30 s); MaxAge is how long a fetched set is used before it
	// is fetched again (default 1 h).
	MinRefresh time.Duration
	MaxAge     time.Duration
	// Prefetch fetches the JWK Set in New, so that a wrong URL stops the
	// service at start. Without it the set is fetched at the first token,
	// and a service may start before Pasee does.
	Prefetch bool

	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Verifier checks Pasee access tokens. It is safe for concurrent use; make
// one per process and share it.
type Verifier struct {
	tokens *token.Verifier
	remote *token.RemoteKeySet // nil unless the keys come from JWKSURL
}

// New returns a Verifier for opts. ctx bounds the first fetch of the JWK
// Set when Options.Prefetch is set; the Verifier does not keep it.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("verify: Options.Issuer is required: Pasee's [jwt] iss, by default its hostname such as https://auth.example.com")
	}
	sources := 0
	for _, given := range []bool{opts.JWKSURL != "", len(opts.PublicKeysPEM) > 0, opts.KeySet != nil} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("verify: give exactly one of Options.JWKSURL, PublicKeysPEM and KeySet (%d given)", sources)
	}
	v := &Verifier{}
	keys := opts.KeySet
	switch {
	case opts.JWKSURL != "":
		u, err := url.Parse(opts.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("verify: JWKSURL %q must be an absolute http(s) URL such as https://auth.example.com/jwks.json", opts.JWKSURL)
		}
		v.remote = token.NewRemoteKeySet(opts.JWKSURL, token.RemoteOptions{
			Client: opts.HTTPClient, MinRefresh: opts.MinRefresh, MaxAge: opts.MaxAge, Now: opts.Now,
		})
		keys = v.remote
	case len(opts.PublicKeysPEM) > 0:
		pub, err := token.ParsePublicKeysPEM(opts.PublicKeysPEM)
		if err != nil {
			return nil, fmt.Errorf("verify: PublicKeysPEM%w", err)
		}
		keys = token.NewStaticKeySet(pub...)
	}
	vopts := []token.VerifierOption{
		token.WithTypes(token.TypeAccess),
		token.WithIssuer(opts.Issuer),
		token.AcceptLegacyES256K(opts.LegacyES256K),
	}
	if opts.Audience != "" {
		vopts = append(vopts, token.WithAudience(opts.Audience))
	}
	switch {
	case opts.Leeway < 0:
		vopts = append(vopts, token.WithLeeway(0))
	case opts.Leeway > 0:
		vopts = append(vopts, token.WithLeeway(opts.Leeway))
	}
	if opts.Now != nil {
		vopts = append(vopts, token.WithClock(opts.Now))
	}
	v.tokens = token.NewVerifier(keys, vopts...)
	if opts.Prefetch && v.remote != nil {
		if err := v.remote.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("verify: prefetch the JWK Set: %w", err)
		}
	}
	return v, nil
}

// Refresh fetches the JWK Set now (a no-op for PEM keys), for a service
// that knows Pasee rotated its key.
func (v *Verifier) Refresh(ctx context.Context) error {
	if v.remote == nil {
		return nil
	}
	if err := v.remote.Refresh(ctx); err != nil {
		return fmt.Errorf("verify: refresh the JWK Set: %w", err)
	}
	return nil
}

// Verify checks raw, an access token, and returns the identity it carries.
// The error wraps one of token's reasons (token.ErrExpired,
// token.ErrSignature, token.ErrType...), or token.ErrKeySetUnavailable when
// Pasee's keys could not be fetched: then the token could not be checked,
// which is not the caller's fault. Its text is fit for a client.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	c, err := v.tokens.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	// Pasee refuses these itself; a service must not be laxer.
	if c.Bool("refresh_token") {
		return nil, fmt.Errorf("%w: a refresh token is not an access token", token.ErrType)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no \"sub\" claim", token.ErrMalformed)
	}
	id := &Identity{Subject: c.Subject, ExpiresAt: c.ExpiresAt, Claims: c}
	if c.Has("groups") {
		groups, ok := c.Strings("groups")
		if !ok {
			return nil, fmt.Errorf("%w: claim \"groups\" must be a list of strings", token.ErrMalformed)
		}
		id.Groups = groups
	}
	id.IDP, _ = c.String("idp")
	id.SessionID, _ = c.String("sid")
	return id, nil
}

// Identity is the caller an access token names.
type Identity struct {
	// Subject is the user's Pasee name, "<provider>-<subject>": "kisee-alice".
	Subject string
	// Groups are the user's groups when the token was issued, exact
	// memberships, sorted: ["articles.writers", "staff"].
	Groups []string
	// IDP is the identity provider the user logged in with ("kisee").
	IDP string
	// SessionID is Pasee's login session ("sid"), to correlate logs.
	SessionID string
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time
	// Claims are all the token's claims, including the provider claims
	// Pasee whitelists ("email"...), in Claims.Extra.
	Claims *token.Claims
}

// HasGroup reports whether the identity is a member of group itself.
// Membership of a subgroup does not count: see InGroupTree.
func (id *Identity) HasGroup(group string) bool {
	if id == nil {
		return false
	}
	for _, g := range id.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// InGroupTree reports whether the identity is a member of the group prefix
// or of any group under it: InGroupTree("articles") holds for "articles",
// "articles.writers" and "articles.writers.staff", not for "articles_old".
// A trailing dot is ignored ("articles." is "articles"); an empty prefix
// matches nothing.
func (id *Identity) InGroupTree(prefix string) bool {
	prefix = strings.TrimSuffix(prefix, ".")
	if id == nil || prefix == "" {
		return false
	}
	for _, g := range id.Groups {
		if g == prefix || (len(g) > len(prefix) && g[len(prefix)] == '.' && strings.HasPrefix(g, prefix)) {
			return true
		}
	}
	return false
}

// AnyOf reports whether the identity is a member of at least one of groups
// (exact memberships).
func (id *Identity) AnyOf(groups ...string) bool {
	for _, g := range groups {
		if id.HasGroup(g) {
			return true
		}
	}
	return false
}

// AllOf reports whether the identity is a member of every one of groups
// (exact memberships); true for no groups.
func (id *Identity) AllOf(groups ...string) bool {
	for _, g := range groups {
		if !id.HasGroup(g) {
			return false
		}
	}
	return true
}

// identityKey is the context key of the Identity in a context.Context.
type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id. The middlewares do it for
// each request; tests of handlers use it to fake a caller.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the Identity a middleware put in ctx (the request's
// context, for code below the HTTP layer and for net/http handlers).
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}
