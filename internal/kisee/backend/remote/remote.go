// Package remote is the "remote" backend: Kisee identifies users against an
// upstream Kisee (its /jwt/) or Pasee (its /tokens/?idp=...), verifies the
// upstream token with configured keys or a JWKS URL, and uses its "sub" as
// the username. Stacked under a Pasee, this is how names like
// "externals-internals-ada" arise.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_backend.options] of the remote backend.
type Options struct {
	// URL is the upstream Kisee's /jwt/ or Pasee's /tokens/.
	URL string `toml:"url"`
	// IDP is sent as ?idp= to a Pasee upstream.
	IDP string `toml:"idp"`
	// PublicKeys (PEM) or JWKSURL verify the upstream's tokens.
	PublicKeys []string `toml:"public_keys"`
	JWKSURL    string   `toml:"jwks_url"`
	// Issuer, when set, is the "iss" upstream tokens must carry.
	Issuer string `toml:"issuer"`
	// Claims are upstream claims passed on in Kisee's token.
	Claims  []string          `toml:"claims"`
	Timeout settings.Duration `toml:"timeout"` // default 5 s
	// LegacyES256K accepts secp256k1 tokens labelled ES256, as the
	// original Kisee and Pasee sign them. Unset: Kisee's own
	// [jwt] legacy_es256k, the one switch an operator sets when old and new
	// services run side by side.
	LegacyES256K *bool `toml:"legacy_es256k"`
}

// Backend is the remote backend. It implements kisee.Backend and
// kisee.HealthChecker.
type Backend struct {
	endpoint string
	pasee    bool
	client   *http.Client
	verifier *token.Verifier
	claims   []string
}

var (
	_ kisee.Backend       = (*Backend)(nil)
	_ kisee.HealthChecker = (*Backend)(nil)
)

// maxAnswer bounds what is read of an upstream answer.
const maxAnswer = 1 << 20

// New returns the backend of o.
func New(o Options) (*Backend, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q must be an absolute http(s) URL (an upstream Kisee's /jwt/ or Pasee's /tokens/)", o.URL)
	}
	if o.Timeout == 0 {
		o.Timeout = settings.Duration(5 * time.Second)
	}
	b := &Backend{pasee: o.IDP != "", claims: o.Claims,
		client: &http.Client{Timeout: o.Timeout.D(), Transport: web.PropagateRequestID(nil), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if b.pasee {
		q := u.Query()
		q.Set("idp", o.IDP)
		u.RawQuery = q.Encode()
	}
	b.endpoint = u.String()
	var keys token.KeySet
	switch {
	case len(o.PublicKeys) > 0:
		pubs, err := token.ParsePublicKeysPEM(o.PublicKeys)
		if err != nil {
			return nil, fmt.Errorf("public_keys%w", err)
		}
		keys = token.NewStaticKeySet(pubs...)
	case o.JWKSURL != "":
		keys = token.NewRemoteKeySet(o.JWKSURL, token.RemoteOptions{Client: b.client})
	default:
		return nil, errors.New("public_keys or jwks_url is required to verify the upstream's tokens")
	}
	typ := token.TypeJWT
	if b.pasee {
		typ = token.TypeAccess
	}
	opts := []token.VerifierOption{token.WithTypes(typ), token.AcceptLegacyES256K(o.LegacyES256K != nil && *o.LegacyES256K)}
	if o.Issuer != "" {
		opts = append(opts, token.WithIssuer(o.Issuer))
	}
	b.verifier = token.NewVerifier(keys, opts...)
	return b, nil
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, password string) (kisee.User, error) {
	if !kisee.PlausibleUsername(username) || password == "" || len(password) > kisee.MaxPasswordBytes {
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	body, _ := json.Marshal(map[string]string{"username": username, "login": username, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint, bytes.NewReader(body))
	if err != nil {
		return kisee.User{}, fmt.Errorf("%w: %v", kisee.ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if addr := kisee.ClientAddr(ctx); addr != "" {
		// Believed by the upstream only if it lists this Kisee in its
		// trusted_proxies: then its brute-force protection counts the
		// client, not this Kisee.
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return kisee.User{}, fmt.Errorf("%w: upstream: %v", kisee.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return kisee.User{}, fmt.Errorf("%w: upstream answer: %v", kisee.ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return kisee.User{}, fmt.Errorf("%w: upstream answered %d", kisee.ErrUnavailable, resp.StatusCode)
	case resp.StatusCode == http.StatusTooManyRequests:
		// The upstream locked this client out: a 429 here too, with the
		// upstream's Retry-After (60 s if it gave none).
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if secs <= 0 {
			secs = 60
		}
		return kisee.User{}, &kisee.LockedError{RetryAfter: time.Duration(secs) * time.Second}
	case resp.StatusCode >= 400:
		return kisee.User{}, kisee.ErrInvalidCredentials
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		return kisee.User{}, fmt.Errorf("%w: upstream answered %d", kisee.ErrUnavailable, resp.StatusCode)
	}
	var parsed struct {
		Tokens      []string `json:"tokens"`
		AccessToken string   `json:"access_token"`
	}
	if err := json.Unmarshal(answer, &parsed); err != nil {
		return kisee.User{}, fmt.Errorf("%w: upstream answer is not JSON", kisee.ErrUnavailable)
	}
	raw := parsed.AccessToken
	if !b.pasee && len(parsed.Tokens) > 0 {
		raw = parsed.Tokens[0]
	}
	if raw == "" {
		return kisee.User{}, fmt.Errorf("%w: upstream answered no token", kisee.ErrUnavailable)
	}
	c, err := b.verifier.Verify(ctx, raw)
	if err != nil {
		return kisee.User{}, fmt.Errorf("%w: upstream token: %v", kisee.ErrUnavailable, err)
	}
	if c.Subject == "" || strings.ContainsAny(c.Subject, "\x00") {
		return kisee.User{}, fmt.Errorf("%w: upstream token without subject", kisee.ErrUnavailable)
	}
	u := kisee.User{ID: c.Subject, Username: c.Subject}
	if email, ok := c.String("email"); ok {
		u.Email = email
	}
	for _, name := range b.claims {
		if v, ok := c.Extra[name]; ok && !token.IsRegistered(name) {
			if u.Claims == nil {
				u.Claims = map[string]any{}
			}
			u.Claims[name] = v
		}
	}
	return u, nil
}

// Health implements kisee.HealthChecker: the upstream answers at all.
func (b *Backend) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream unreachable: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("upstream answered %d", resp.StatusCode)
	}
	return nil
}
