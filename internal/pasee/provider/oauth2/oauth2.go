// Package oauth2 is the "oauth2" provider protocol: the browser is sent to
// the provider's authorization page (with PKCE), Pasee redeems the code the
// provider returns, then asks the provider's user API who logged in. The
// user's stable id there (GitHub's numeric "id", Twitter's "data.id") is
// the subject, never a changeable handle.
//
// Presets fill in the endpoints of GitHub and Twitter; an explicit URL in
// the settings wins over the preset's, and any other provider is described
// by auth_url, token_url, userinfo_url and subject_field. It is built on
// golang.org/x/oauth2. The package also holds what the oidc protocol shares
// with it (client settings, the exchange, user API calls).
package oauth2

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// Options are the [identity_providers.settings] of an oauth2 provider.
type Options struct {
	ClientOptions
	// Preset is "github", "twitter", or "" for a provider described by the
	// explicit settings below.
	Preset string `toml:"preset"`
	// AuthURL is the authorization page the browser is sent to.
	AuthURL string `toml:"auth_url"`
	// TokenURL is where Pasee redeems the code.
	TokenURL string `toml:"token_url"`
	// UserinfoURL is the user API that says who the access token is for.
	UserinfoURL string `toml:"userinfo_url"`
	// SubjectField is the dotted path of the user's stable id in the user
	// API's answer ("id", "data.id", "sub").
	SubjectField string `toml:"subject_field"`
}

// Preset is a provider Pasee knows the endpoints of.
type Preset struct {
	AuthURL, TokenURL, UserinfoURL, SubjectField string
	Scopes                                       []string
	AuthStyle                                    xoauth2.AuthStyle
}

// Presets are the providers the preset setting names.
func Presets() map[string]Preset {
	return map[string]Preset{
		// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
		// No scope: the public profile, which holds the numeric id.
		"github": {
			AuthURL:      "https://github.com/login/oauth/authorize",
			TokenURL:     "https://github.com/login/oauth/access_token",
			UserinfoURL:  "https://api.github.com/user",
			SubjectField: "id",
			AuthStyle:    xoauth2.AuthStyleInParams,
		},
		// https://developer.x.com/en/docs/authentication/oauth-2-0/authorization-code
		// Confidential clients authenticate with HTTP Basic; users.read
		// needs tweet.read too.
		"twitter": {
			AuthURL:      "https://twitter.com/i/oauth2/authorize",
			TokenURL:     "https://api.twitter.com/2/oauth2/token",
			UserinfoURL:  "https://api.twitter.com/2/users/me",
			SubjectField: "data.id",
			Scopes:       []string{"users.read", "tweet.read"},
			AuthStyle:    xoauth2.AuthStyleInHeader,
		},
	}
}

// Provider is an OAuth 2.0 provider with a user API.
type Provider struct {
	name     string
	conf     *xoauth2.Config
	userinfo string
	subject  string
	base     string // the object holding the subject, where claims are looked up too
	claims   []string
	http     *http.Client
}

var _ pasee.RedirectLogin = (*Provider)(nil)

// New returns the oauth2 provider name. Errors are *SettingError naming
// the wrong key.
func New(name string, o Options) (*Provider, error) {
	preset := Preset{AuthStyle: xoauth2.AuthStyleInHeader}
	if o.Preset != "" {
		var ok bool
		if preset, ok = Presets()[o.Preset]; !ok {
			return nil, settingErr("preset", "unknown preset %q (github, twitter, or none with auth_url, token_url, userinfo_url and subject_field)", o.Preset)
		}
	}
	pick := func(explicit, def string) string {
		if explicit != "" {
			return explicit
		}
		return def
	}
	auth, tok, info := pick(o.AuthURL, preset.AuthURL), pick(o.TokenURL, preset.TokenURL), pick(o.UserinfoURL, preset.UserinfoURL)
	subject := pick(o.SubjectField, preset.SubjectField)
	for _, s := range []struct{ key, value string }{{"auth_url", auth}, {"token_url", tok}, {"userinfo_url", info}, {"subject_field", subject}} {
		if s.value == "" {
			return nil, settingErr(s.key, "missing required value (or a preset: github, twitter)")
		}
		if s.key != "subject_field" {
			if err := CheckURL(s.key, s.value); err != nil {
				return nil, err
			}
		}
	}
	if strings.HasPrefix(subject, ".") || strings.HasSuffix(subject, ".") || strings.Contains(subject, "..") {
		return nil, settingErr("subject_field", "%q is not a dotted path such as id or data.id", subject)
	}
	id, secret, err := o.Credentials()
	if err != nil {
		return nil, err
	}
	style, err := o.Style(preset.AuthStyle)
	if err != nil {
		return nil, err
	}
	for i, c := range o.Claims {
		if c == "" {
			return nil, settingErr(fmt.Sprintf("claims[%d]", i), "empty claim name")
		}
	}
	scopes := o.Scopes
	if scopes == nil {
		scopes = preset.Scopes
	}
	base := ""
	if i := strings.LastIndexByte(subject, '.'); i > 0 {
		base = subject[:i]
	}
	return &Provider{
		name: name,
		conf: &xoauth2.Config{ClientID: id, ClientSecret: secret, Scopes: scopes,
			Endpoint: xoauth2.Endpoint{AuthURL: auth, TokenURL: tok, AuthStyle: style}},
		userinfo: info, subject: subject, base: base, claims: o.Claims, http: o.HTTPClient(),
	}, nil
}

// Name implements pasee.Provider.
func (p *Provider) Name() string { return p.name }

// Protocol implements pasee.Provider.
func (p *Provider) Protocol() string { return "oauth2" }

// AuthCodeURL implements pasee.RedirectLogin. The nonce is an OpenID
// Connect parameter, not sent to plain OAuth 2.0 providers.
func (p *Provider) AuthCodeURL(_ context.Context, state, challenge, _, callback string) (string, error) {
	return p.conf.AuthCodeURL(state, AuthCodeOptions(challenge, "", callback)...), nil
}

// Exchange implements pasee.RedirectLogin: it redeems the code, then asks
// the user API who the access token is for.
func (p *Provider) Exchange(ctx context.Context, code, verifier, _, callback string) (pasee.Identity, error) {
	tok, err := Exchange(ctx, p.name, p.http, p.conf, code, verifier, callback)
	if err != nil {
		return pasee.Identity{}, err
	}
	info, err := FetchJSON(ctx, p.name, p.http, p.userinfo, tok.AccessToken)
	if err != nil {
		return pasee.Identity{}, err
	}
	sub, err := SubjectOf(info, p.subject)
	if err != nil {
		return pasee.Identity{}, fmt.Errorf("%w: %s's user API: %v", pasee.ErrProviderBadAnswer, p.name, err)
	}
	return pasee.Identity{Subject: sub, Claims: PickClaims(info, p.claims, p.base)}, nil
}
