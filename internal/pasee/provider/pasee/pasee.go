// Package pasee is the "pasee" provider protocol: another Pasee as
// identity provider. Credentials go to its /tokens/?idp=<idp> (found through
// its JSON-Home), its access token is verified against its keys, and its
// "sub" — already prefixed there — gets this Pasee's prefix too, so names
// stack: "externals-internals-ada".
package pasee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/upstream"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_providers.settings] of a pasee provider.
type Options struct {
	upstream.Options
	// IDP is the upstream Pasee's provider to log in with (?idp=).
	IDP string `toml:"idp"`
}

// Provider is an upstream Pasee.
type Provider struct {
	name   string
	idp    string
	client *upstream.Client
}

var (
	_ pasee.PasswordLogin = (*Provider)(nil)
	_ pasee.TokenLogin    = (*Provider)(nil)
	_ pasee.Forwarder     = (*Provider)(nil)
)

// New returns the provider name for the Pasee at endpoint.
func New(name, endpoint string, o Options) (*Provider, error) {
	if o.IDP == "" {
		return nil, errors.New("idp: the upstream Pasee's identity provider to log in with is required")
	}
	types := []string{token.TypeAccess}
	if o.LegacyES256K != nil && *o.LegacyES256K {
		// The original Pasee's access tokens are typed "JWT" (its refresh
		// tokens too, and upstream.Client.Verify refuses those by their
		// refresh_token claim).
		types = append(types, token.TypeJWT)
	}
	c, err := upstream.New(name, endpoint, o.Options, types...)
	if err != nil {
		return nil, err
	}
	return &Provider{name: name, idp: o.IDP, client: c}, nil
}

// Name implements pasee.Provider.
func (p *Provider) Name() string { return p.name }

// Protocol implements pasee.Provider.
func (p *Provider) Protocol() string { return "pasee" }

// Login implements pasee.PasswordLogin.
func (p *Provider) Login(ctx context.Context, login, password string) (pasee.Identity, error) {
	href, err := p.client.Resource(ctx, "tokens")
	if err != nil {
		return pasee.Identity{}, err
	}
	u, err := url.Parse(href)
	if err != nil {
		return pasee.Identity{}, fmt.Errorf("%w: %v", pasee.ErrProviderBadAnswer, err)
	}
	q := u.Query()
	q.Set("idp", p.idp)
	u.RawQuery = q.Encode()
	resp, body, err := p.client.PostJSON(ctx, u.String(), map[string]string{"login": login, "password": password}, "")
	if err != nil {
		return pasee.Identity{}, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return pasee.Identity{}, p.client.LoginError(resp)
	}
	var answer struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.AccessToken == "" {
		return pasee.Identity{}, fmt.Errorf("%w: %s answered no access token", pasee.ErrProviderBadAnswer, p.name)
	}
	id, _, err := p.client.Verify(ctx, answer.AccessToken)
	if err != nil {
		return pasee.Identity{}, upstream.BadAnswer(p.name, err)
	}
	return id, nil
}

// VerifyToken implements pasee.TokenLogin: an access token of the upstream
// Pasee, presented as Bearer.
func (p *Provider) VerifyToken(ctx context.Context, raw string) (pasee.Identity, error) {
	id, _, err := p.client.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, pasee.ErrProviderUnavailable) {
			return pasee.Identity{}, err
		}
		return pasee.Identity{}, fmt.Errorf("%w: %v", pasee.ErrProviderRefused, err)
	}
	return id, nil
}

// Forward implements pasee.Forwarder.
func (p *Provider) Forward(ctx context.Context, resource string, body []byte, contentType string) (*pasee.Forwarded, error) {
	return p.client.Forward(ctx, resource, body, contentType)
}
