// Package upstream is what the kisee and pasee provider protocols share:
// finding an upstream service's resources through its JSON-Home, posting
// to it with timeouts, classifying its failures, and verifying the tokens
// it returns against its keys with a claim whitelist.
package upstream

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
	"sync"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/ratelimit"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_providers.settings] shared by the kisee and
// pasee protocols.
type Options struct {
	// PublicKeys are PEM keys the upstream signs with (several: rotation).
	PublicKeys []string `toml:"public_keys"`
	// JWKSURL is where the upstream publishes its keys. With neither
	// PublicKeys nor JWKSURL, the "jwks" resource of its JSON-Home is used.
	JWKSURL string `toml:"jwks_url"`
	// Claims are the upstream claims kept in Pasee's tokens; nothing else is.
	Claims []string `toml:"claims"`
	// Issuer, when set, is the "iss" upstream tokens must carry.
	Issuer string `toml:"issuer"`
	// Timeout bounds every call to the upstream (default 5 s).
	Timeout settings.Duration `toml:"timeout"`
	// LegacyES256K accepts secp256k1 tokens labelled ES256 (original
	// services). Unset, it follows Pasee's [jwt] legacy_es256k.
	LegacyES256K *bool `toml:"legacy_es256k"`
}

// homeTTL is how long a discovered JSON-Home is trusted before it is read
// again: an upstream upgraded in place (an original Kisee replaced by this
// one) is noticed without restarting Pasee.
const homeTTL = 5 * time.Minute

// resource is one JSON-Home entry: a plain href or an RFC 6570 template.
type resource struct {
	href     string
	template string
}

// maxAnswer bounds what is read of an upstream answer.
const maxAnswer = 1 << 20

// Client talks to one upstream service.
type Client struct {
	name     string
	endpoint *url.URL
	http     *http.Client
	post     *http.Client // for POSTs: the timeout plus an upstream progressive delay
	opts     Options
	types    []string

	mu       sync.Mutex
	home     map[string]resource // resource name → absolute href or template
	homeAt   time.Time           // when home was read
	homeErr  time.Time
	verifier *token.Verifier
}

// New returns a client for the upstream at endpoint, whose tokens have one
// of types ("JWT" for Kisee, "at+jwt" for Pasee).
func New(name, endpoint string, o Options, types ...string) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q must be an absolute http(s) URL", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if o.Timeout == 0 {
		o.Timeout = settings.Duration(5 * time.Second)
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{name: name, endpoint: u, opts: o, types: types,
		http: &http.Client{Timeout: o.Timeout.D(), Transport: web.PropagateRequestID(nil), CheckRedirect: noRedirect},
		// A login (or a forwarded registration) may wait the upstream's
		// progressive delay before it is answered: allow for it (up to
		// twice the timeout), or a delayed failure would read as an
		// upstream that is down.
		post: &http.Client{Timeout: o.Timeout.D() + min(o.Timeout.D(), ratelimit.DefaultMaxDelay), Transport: web.PropagateRequestID(nil), CheckRedirect: noRedirect}}
	if len(o.PublicKeys) > 0 {
		keys, err := token.ParsePublicKeysPEM(o.PublicKeys)
		if err != nil {
			return nil, fmt.Errorf("public_keys%w", err)
		}
		c.verifier = c.newVerifier(token.NewStaticKeySet(keys...))
	} else if o.JWKSURL != "" {
		if _, err := url.Parse(o.JWKSURL); err != nil {
			return nil, fmt.Errorf("jwks_url: %w", err)
		}
		c.verifier = c.newVerifier(token.NewRemoteKeySet(o.JWKSURL, token.RemoteOptions{Client: c.http}))
	}
	return c, nil
}

func (c *Client) newVerifier(keys token.KeySet) *token.Verifier {
	opts := []token.VerifierOption{token.WithTypes(c.types...), token.AcceptLegacyES256K(c.opts.LegacyES256K != nil && *c.opts.LegacyES256K)}
	if c.opts.Issuer != "" {
		opts = append(opts, token.WithIssuer(c.opts.Issuer))
	}
	return token.NewVerifier(keys, opts...)
}

// Endpoint returns the upstream's base URL.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// Resource returns the absolute URL of the upstream's JSON-Home resource
// name, discovering (and caching) the JSON-Home on first use.
func (c *Client) Resource(ctx context.Context, name string) (string, error) {
	home, err := c.homeDoc(ctx)
	if err != nil {
		return "", err
	}
	r, ok := home[name]
	if !ok || r.href == "" {
		return "", fmt.Errorf("%w: %s's JSON-Home has no %q resource", pasee.ErrProviderBadAnswer, c.name, name)
	}
	return r.href, nil
}

// Template returns the URL template (href-template) of the JSON-Home
// resource name, and false when the upstream does not advertise it.
func (c *Client) Template(ctx context.Context, name string) (string, bool, error) {
	home, err := c.homeDoc(ctx)
	if err != nil {
		return "", false, err
	}
	r, ok := home[name]
	return r.template, ok && r.template != "", nil
}

// homeDoc returns the upstream's JSON-Home, read again once homeTTL has
// passed. A stale copy keeps serving while the upstream cannot answer.
func (c *Client) homeDoc(ctx context.Context) (map[string]resource, error) {
	c.mu.Lock()
	home, readAt, failedAt := c.home, c.homeAt, c.homeErr
	c.mu.Unlock()
	if home != nil && time.Since(readAt) < homeTTL {
		return home, nil
	}
	if !failedAt.IsZero() && time.Since(failedAt) < time.Second {
		if home != nil {
			return home, nil
		}
		return nil, fmt.Errorf("%w: %s's JSON-Home was unreachable a moment ago", pasee.ErrProviderUnavailable, c.name)
	}
	fresh, err := c.fetchHome(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.homeErr = time.Now()
		if home != nil {
			return home, nil
		}
		return nil, err
	}
	c.home, c.homeAt = fresh, time.Now()
	return fresh, nil
}

func (c *Client) fetchHome(ctx context.Context) (map[string]resource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pasee.ErrProviderUnavailable, err)
	}
	req.Header.Set("Accept", "application/json-home, application/json")
	resp, body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, "JSON-Home")
	}
	var doc struct {
		Resources map[string]struct {
			Href     string `json:"href"`
			Template string `json:"href-template"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Resources) == 0 {
		return nil, fmt.Errorf("%w: %s's / is not a JSON-Home document", pasee.ErrProviderBadAnswer, c.name)
	}
	home := make(map[string]resource, len(doc.Resources))
	for name, r := range doc.Resources {
		var entry resource
		if r.Href != "" {
			entry.href = c.onEndpoint(r.Href)
		}
		if r.Template != "" {
			entry.template = c.onEndpoint(r.Template)
		}
		if entry.href != "" || entry.template != "" {
			home[name] = entry
		}
	}
	return home, nil
}

// onEndpoint resolves a JSON-Home link on the configured endpoint. The
// original services gave relative hrefs. Absolute ones are built from the
// upstream's public hostname, which may not be reachable from here (a
// container network, a split-horizon DNS): keep their path, on the
// endpoint Pasee was told to use. "" when the link is not a URL.
func (c *Client) onEndpoint(link string) string {
	// Template variables ({jti}) are not valid in a URL path: parse with
	// them escaped, and put them back.
	escaped := strings.NewReplacer("{", "%7B", "}", "%7D").Replace(link)
	ref, err := url.Parse(escaped)
	if err != nil {
		return ""
	}
	abs := c.endpoint.ResolveReference(ref)
	abs.Scheme, abs.Host = c.endpoint.Scheme, c.endpoint.Host
	return strings.NewReplacer("%7B", "{", "%7D", "}").Replace(abs.String())
}

// do sends req and reads a bounded answer, mapping transport failures to
// ErrProviderUnavailable.
func (c *Client) do(req *http.Request) (*http.Response, []byte, error) {
	client := c.http
	if req.Method == http.MethodPost {
		client = c.post
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", pasee.ErrProviderUnavailable, c.name, redactURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: reading the answer: %v", pasee.ErrProviderUnavailable, c.name, err)
	}
	if len(body) > maxAnswer {
		return nil, nil, fmt.Errorf("%w: %s answered more than %d bytes", pasee.ErrProviderBadAnswer, c.name, maxAnswer)
	}
	return resp, body, nil
}

func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// PostJSON posts body as JSON to href, with an optional bearer token.
func (c *Client) PostJSON(ctx context.Context, href string, body any, bearer string) (*http.Response, []byte, error) {
	enc, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("encode request: %w", err)
	}
	return c.Post(ctx, href, enc, "application/json", bearer)
}

// Post posts raw bytes to href.
func (c *Client) Post(ctx context.Context, href string, body []byte, contentType, bearer string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, href, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", pasee.ErrProviderUnavailable, err)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if addr := pasee.ClientAddr(ctx); addr != "" {
		// Believed by the upstream only if it lists Pasee in trusted_proxies.
		req.Header.Set("X-Forwarded-For", addr)
	}
	return c.do(req)
}

// Get gets href with an optional bearer token.
func (c *Client) Get(ctx context.Context, href, bearer string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, href, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", pasee.ErrProviderUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return c.do(req)
}

// LoginError maps a non-2xx answer to a login: refused credentials, the
// upstream's own lockout, or an upstream that is down.
func (c *Client) LoginError(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if secs <= 0 {
			secs = 60
		}
		return &pasee.ProviderLockedError{RetryAfter: time.Duration(secs) * time.Second}
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s answered %d", pasee.ErrProviderUnavailable, c.name, resp.StatusCode)
	case resp.StatusCode >= 400:
		return fmt.Errorf("%w: %s answered %d", pasee.ErrProviderRefused, c.name, resp.StatusCode)
	}
	return fmt.Errorf("%w: %s answered %d", pasee.ErrProviderBadAnswer, c.name, resp.StatusCode)
}

func (c *Client) statusError(resp *http.Response, what string) error {
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: %s's %s answered %d", pasee.ErrProviderUnavailable, c.name, what, resp.StatusCode)
	}
	return fmt.Errorf("%w: %s's %s answered %d", pasee.ErrProviderBadAnswer, c.name, what, resp.StatusCode)
}

// Verify checks an upstream token and returns the identity it vouches
// for, keeping only whitelisted claims.
func (c *Client) Verify(ctx context.Context, raw string) (pasee.Identity, *token.Claims, error) {
	v, err := c.verifierFor(ctx)
	if err != nil {
		return pasee.Identity{}, nil, err
	}
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrKeySetUnavailable) {
			return pasee.Identity{}, nil, fmt.Errorf("%w: %s's keys: %v", pasee.ErrProviderUnavailable, c.name, err)
		}
		return pasee.Identity{}, nil, err
	}
	if claims.Subject == "" {
		return pasee.Identity{}, nil, fmt.Errorf("%w: token without sub", token.ErrMalformed)
	}
	if claims.Has("password_reset_for") || claims.Bool("refresh_token") {
		return pasee.Identity{}, nil, fmt.Errorf("%w: not an identity token", token.ErrType)
	}
	id := pasee.Identity{Subject: claims.Subject}
	for _, name := range c.opts.Claims {
		if v, ok := claims.Extra[name]; ok && !token.IsRegistered(name) {
			if id.Claims == nil {
				id.Claims = map[string]any{}
			}
			id.Claims[name] = v
		}
	}
	return id, claims, nil
}

// verifierFor returns the verifier, building it from the discovered JWKS
// resource when no keys were configured.
func (c *Client) verifierFor(ctx context.Context) (*token.Verifier, error) {
	c.mu.Lock()
	v := c.verifier
	c.mu.Unlock()
	if v != nil {
		return v, nil
	}
	href, err := c.Resource(ctx, "jwks")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verifier == nil {
		c.verifier = c.newVerifier(token.NewRemoteKeySet(href, token.RemoteOptions{Client: c.http}))
	}
	return c.verifier, nil
}

// Forward posts body unchanged to the upstream resource and returns its answer.
func (c *Client) Forward(ctx context.Context, resource string, body []byte, contentType string) (*pasee.Forwarded, error) {
	href, err := c.Resource(ctx, resource)
	if err != nil {
		return nil, err
	}
	resp, answer, err := c.Post(ctx, href, body, contentType, "")
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for _, name := range []string{"Content-Type", "Location", "Retry-After"} {
		if v := resp.Header.Get(name); v != "" {
			h.Set(name, v)
		}
	}
	return &pasee.Forwarded{Status: resp.StatusCode, Header: h, Body: answer}, nil
}

// BadAnswer wraps a verification failure of a token the upstream itself
// returned: the upstream is at fault (502), not the user.
func BadAnswer(name string, err error) error {
	if errors.Is(err, pasee.ErrProviderUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s returned a token that does not verify: %v", pasee.ErrProviderBadAnswer, name, err)
}
