package pasee

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Identity is a user as an identity provider vouches for it.
type Identity struct {
	// Subject is the provider's stable id of the user; Pasee names the user
	// "<provider>-<Subject>".
	Subject string
	// Claims are the provider's claims that the provider's whitelist keeps.
	Claims map[string]any
}

// Provider is an identity provider Pasee federates. Each protocol (kisee,
// pasee, oauth2, oidc) is a package under pasee/provider implementing it
// and one or more of the capability interfaces below.
type Provider interface {
	// Name is the prefix of the provider's users ("kisee" → "kisee-alice").
	Name() string
	// Protocol is the provider's protocol, for GET /tokens/.
	Protocol() string
}

// PasswordLogin is a provider that checks a login and password itself
// (Kisee, another Pasee): Pasee forwards the credentials.
type PasswordLogin interface {
	Provider
	Login(ctx context.Context, login, password string) (Identity, error)
}

// TokenLogin is a provider whose own tokens a client may present to Pasee
// as proof of identity (Authorization: Bearer <provider token>).
type TokenLogin interface {
	Provider
	VerifyToken(ctx context.Context, raw string) (Identity, error)
}

// RedirectLogin is a provider a browser is sent to (OAuth2, OIDC).
type RedirectLogin interface {
	Provider
	// AuthCodeURL is where to send the browser, with Pasee's state, its
	// PKCE challenge (S256) and, for OpenID Connect, a nonce; callback is
	// Pasee's own URL registered at the provider. It may need the network
	// (OIDC discovery), hence the context and the error, which wraps
	// ErrProviderUnavailable or ErrProviderBadAnswer.
	AuthCodeURL(ctx context.Context, state, codeChallenge, nonce, callback string) (string, error)
	// Exchange completes the flow for the code the provider returned: it
	// redeems the code with the PKCE verifier and returns the identity the
	// provider vouches for (an OIDC id_token must carry nonce).
	Exchange(ctx context.Context, code, codeVerifier, nonce, callback string) (Identity, error)
}

// Forwarder is a provider that accepts self-registration and password
// recovery requests, which Pasee forwards unchanged.
type Forwarder interface {
	Provider
	// Forward posts body to the provider's resource ("users" or
	// "password_recoveries") and returns its answer as is.
	Forward(ctx context.Context, resource string, body []byte, contentType string) (*Forwarded, error)
}

// Forwarded is a provider's answer to a forwarded request.
type Forwarded struct {
	Status int
	Header http.Header
	Body   []byte
}

// Errors providers return; the API maps them to statuses.
var (
	// ErrProviderRefused: the provider says the credentials are wrong (403).
	ErrProviderRefused = errors.New("identity provider refused the credentials")
	// ErrProviderUnavailable: the provider cannot be reached or timed out (503).
	ErrProviderUnavailable = errors.New("identity provider not responding")
	// ErrProviderBadAnswer: the provider answered something unusable (502).
	ErrProviderBadAnswer = errors.New("identity provider answered something unusable")
	// ErrProviderDenied: the user declined at the provider (OAuth2 access_denied).
	ErrProviderDenied = errors.New("access denied at the identity provider")
)

// ProviderLockedError is the provider's own brute-force lockout, passed on.
type ProviderLockedError struct{ RetryAfter time.Duration }

func (e *ProviderLockedError) Error() string {
	return fmt.Sprintf("identity provider locked the account; retry in %s", e.RetryAfter)
}

type clientAddrKey struct{}

// WithClientAddr records the address of the client a login is made for,
// so that a provider can pass it upstream (X-Forwarded-For): the
// upstream's brute-force protection then counts the real client, not Pasee.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddr returns the address recorded by WithClientAddr, or "".
func ClientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}
