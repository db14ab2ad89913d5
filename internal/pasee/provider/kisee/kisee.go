// Package kisee is the "kisee" provider protocol: Pasee forwards a login
// and password to a Kisee's token endpoint (found through its JSON-Home),
// verifies the identity token it returns against the Kisee's keys, and
// keeps only the whitelisted claims. A Kisee token the client already
// holds can be presented instead, and is checked for revocation when the
// Kisee offers it (check_revocation).
package kisee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/upstream"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_providers.settings] of a kisee provider.
type Options struct {
	upstream.Options
	// CheckRevocation says when Kisee is asked whether a token presented as
	// Bearer was revoked (GET /jwt/{jti}): "auto" (the default) when its
	// JSON-Home advertises the route, true always, false never. See
	// Revocation.
	CheckRevocation any `toml:"check_revocation"`
}

// Revocation is when a Bearer token is checked for revocation.
type Revocation int

const (
	// RevocationAuto asks Kisees whose JSON-Home advertises the
	// "token_status" resource (this suite's Kisee), and refuses the token
	// when such a Kisee does not answer. The original Kisee advertises no
	// such route (it answers GET /jwt/{jti} with 500): its tokens are
	// trusted until they expire, as the original Pasee did.
	RevocationAuto Revocation = iota
	// RevocationAlways asks every time and refuses the token unless Kisee
	// answers that it lives.
	RevocationAlways
	// RevocationNever never asks.
	RevocationNever
)

// TokenStatusResource is the JSON-Home resource through which a Kisee
// tells whether one of its tokens was revoked: an href-template with the
// variable jti.
const TokenStatusResource = "token_status"

// ParseRevocation reads a check_revocation value: true, false, "auto"
// (or nil: the default, auto), "true" or "false".
func ParseRevocation(v any) (Revocation, error) {
	switch v := v.(type) {
	case nil:
		return RevocationAuto, nil
	case bool:
		if v {
			return RevocationAlways, nil
		}
		return RevocationNever, nil
	case string:
		switch strings.ToLower(v) {
		case "auto":
			return RevocationAuto, nil
		case "true", "always":
			return RevocationAlways, nil
		case "false", "never":
			return RevocationNever, nil
		}
	}
	return 0, fmt.Errorf("check_revocation: %v is not one of \"auto\", true, false", v)
}

// Provider is a Kisee.
type Provider struct {
	name       string
	client     *upstream.Client
	revocation Revocation
}

var (
	_ pasee.PasswordLogin = (*Provider)(nil)
	_ pasee.TokenLogin    = (*Provider)(nil)
	_ pasee.Forwarder     = (*Provider)(nil)
)

// New returns the provider name for the Kisee at endpoint.
func New(name, endpoint string, o Options) (*Provider, error) {
	rev, err := ParseRevocation(o.CheckRevocation)
	if err != nil {
		return nil, err
	}
	c, err := upstream.New(name, endpoint, o.Options, token.TypeJWT)
	if err != nil {
		return nil, err
	}
	return &Provider{name: name, client: c, revocation: rev}, nil
}

// Name implements pasee.Provider.
func (p *Provider) Name() string { return p.name }

// Protocol implements pasee.Provider.
func (p *Provider) Protocol() string { return "kisee" }

// Endpoint returns the Kisee's base URL.
func (p *Provider) Endpoint() string { return p.client.Endpoint() }

// Login implements pasee.PasswordLogin.
func (p *Provider) Login(ctx context.Context, login, password string) (pasee.Identity, error) {
	href, err := p.client.Resource(ctx, "jwt")
	if err != nil {
		return pasee.Identity{}, err
	}
	// Both names: new Kisees read "username", the original ones "login".
	resp, body, err := p.client.PostJSON(ctx, href, map[string]string{"username": login, "login": login, "password": password}, "")
	if err != nil {
		return pasee.Identity{}, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return pasee.Identity{}, p.client.LoginError(resp)
	}
	var answer struct {
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || len(answer.Tokens) == 0 || answer.Tokens[0] == "" {
		return pasee.Identity{}, fmt.Errorf("%w: %s answered no token", pasee.ErrProviderBadAnswer, p.name)
	}
	id, _, err := p.client.Verify(ctx, answer.Tokens[0])
	if err != nil {
		return pasee.Identity{}, upstream.BadAnswer(p.name, err)
	}
	return id, nil
}

// VerifyToken implements pasee.TokenLogin.
func (p *Provider) VerifyToken(ctx context.Context, raw string) (pasee.Identity, error) {
	id, claims, err := p.client.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, pasee.ErrProviderUnavailable) {
			return pasee.Identity{}, err
		}
		return pasee.Identity{}, fmt.Errorf("%w: %v", pasee.ErrProviderRefused, err)
	}
	if p.revocation == RevocationNever {
		return id, nil
	}
	tmpl, advertised, err := p.client.Template(ctx, TokenStatusResource)
	if err != nil {
		// Whether this Kisee can revoke tokens is unknown: fail closed.
		return pasee.Identity{}, err
	}
	if !advertised && p.revocation == RevocationAuto {
		return id, nil
	}
	if err := p.checkRevocation(ctx, raw, claims.ID, tmpl); err != nil {
		return pasee.Identity{}, err
	}
	return id, nil
}

// checkRevocation asks Kisee about the token (GET /jwt/{jti} with itself),
// at the advertised template or else below the "jwt" resource.
func (p *Provider) checkRevocation(ctx context.Context, raw, jti, tmpl string) error {
	if jti == "" {
		return fmt.Errorf("%w: token without jti cannot be checked for revocation", pasee.ErrProviderRefused)
	}
	var href string
	if tmpl != "" && strings.Count(tmpl, "{jti}") == 1 {
		href = strings.Replace(tmpl, "{jti}", url.PathEscape(jti), 1)
	} else {
		base, err := p.client.Resource(ctx, "jwt")
		if err != nil {
			return err
		}
		href = base + url.PathEscape(jti)
	}
	resp, body, err := p.client.Get(ctx, href, raw)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var info struct {
			Revoked bool `json:"revoked"`
		}
		if err := json.Unmarshal(body, &info); err != nil {
			return fmt.Errorf("%w: %s: unreadable token status", pasee.ErrProviderBadAnswer, p.name)
		}
		if info.Revoked {
			return fmt.Errorf("%w: the token was revoked", pasee.ErrProviderRefused)
		}
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s answered %d", pasee.ErrProviderUnavailable, p.name, resp.StatusCode)
	}
	return fmt.Errorf("%w: %s does not recognise the token (%d)", pasee.ErrProviderRefused, p.name, resp.StatusCode)
}

// Forward implements pasee.Forwarder.
func (p *Provider) Forward(ctx context.Context, resource string, body []byte, contentType string) (*pasee.Forwarded, error) {
	return p.client.Forward(ctx, resource, body, contentType)
}
