package app

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/pasee/adminui"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/pasee/openid"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/pkg/token"
)

// ClientSettings is one [[clients]] entry: a relying party of Pasee as an
// OpenID Provider.
type ClientSettings struct {
	ID     string `toml:"id"`
	Secret string `toml:"secret"`
	// SecretFile is read into Secret by the settings loader.
	SecretFile             string   `toml:"secret_file"`
	Name                   string   `toml:"name"`
	RedirectURIs           []string `toml:"redirect_uris"`
	PostLogoutRedirectURIs []string `toml:"post_logout_redirect_uris"`
	// IDTokenSignedResponseAlg is "" (Pasee's key) or "RS256" (the
	// [oidc] rsa_private_key).
	IDTokenSignedResponseAlg string `toml:"id_token_signed_response_alg"`
}

// OIDCSettings is the [oidc] table: what Pasee as an OpenID Provider needs
// beyond its clients.
type OIDCSettings struct {
	// RSAPrivateKey signs the ID tokens of clients that ask for RS256
	// when Pasee's own key is not RSA. Published in /jwks.json.
	RSAPrivateKey     string `toml:"rsa_private_key"`
	RSAPrivateKeyFile string `toml:"rsa_private_key_file"`
}

var clientID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// MinClientSecret is the shortest client secret accepted: 128 bits of
// base64 or hex is at least 22 characters; a shorter one is guessable.
const MinClientSecret = 16

// checkOpenID checks [[clients]] and [oidc], and works out the issuer.
func (cfg *Config) checkOpenID() error {
	s, src := &cfg.Settings, cfg.Source
	if len(s.Clients) == 0 {
		if s.OIDC.RSAPrivateKey != "" {
			return src.Errorf("oidc.rsa_private_key", "an RSA key for ID tokens is set but no [[clients]] is declared")
		}
		return nil
	}
	if _, err := cfg.Issuer(); err != nil {
		return src.Errorf("jwt.iss", "%v", err)
	}
	seen := map[string]bool{}
	for i := range s.Clients {
		c := &s.Clients[i]
		key := fmt.Sprintf("clients[%d]", i)
		if !clientID.MatchString(c.ID) {
			return src.Errorf(key+".id", "client ids are 1 to 128 characters among letters, digits and ._~- (they travel in URLs), not %q", c.ID)
		}
		if c.ID == adminui.ClientID {
			return src.Errorf(key+".id", "%q is the id of Pasee's own administration page, a built-in client: choose another", c.ID)
		}
		if seen[c.ID] {
			return src.Errorf(key+".id", "two clients have the id %q", c.ID)
		}
		seen[c.ID] = true
		if c.Secret != "" && len(c.Secret) < MinClientSecret {
			return src.Errorf(key+".secret", "a client secret must be at least %d characters (`openssl rand -base64 32` makes one); leave it out for a public client, which uses PKCE", MinClientSecret)
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		if len(c.RedirectURIs) == 0 {
			return src.Errorf(key+".redirect_uris", "missing required value: the client's redirect URIs (compared exactly)")
		}
		for j, u := range c.RedirectURIs {
			if err := checkClientURI(u); err != nil {
				return src.Errorf(fmt.Sprintf("%s.redirect_uris[%d]", key, j), "%v", err)
			}
		}
		for j, u := range c.PostLogoutRedirectURIs {
			if err := checkClientURI(u); err != nil {
				return src.Errorf(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", key, j), "%v", err)
			}
		}
		if c.IDTokenSignedResponseAlg != "" && c.IDTokenSignedResponseAlg != string(token.RS256) {
			return src.Errorf(key+".id_token_signed_response_alg", "%q is not supported: leave it out (Pasee's own key) or set \"RS256\"", c.IDTokenSignedResponseAlg)
		}
	}
	return nil
}

// loadRSAKey reads [oidc] rsa_private_key, and checks that every client
// asking for RS256 ID tokens can have them, once Pasee's keys are loaded.
func (cfg *Config) loadRSAKey() error {
	src := cfg.Source
	if k := cfg.OIDC.RSAPrivateKey; k != "" {
		key, err := token.ParsePrivateKeyPEM([]byte(k))
		if err != nil {
			return src.Errorf("oidc.rsa_private_key", "%v", err)
		}
		if key.Algorithm() != token.RS256 {
			return src.Errorf("oidc.rsa_private_key", "must be an RSA key (of at least %d bits), not a %s key", token.MinRSABits, key.Algorithm())
		}
		cfg.RSAKey = key
		// Published in /jwks.json like a key announced ahead of use, so
		// that relying parties find it.
		if !key.Public().Equal(cfg.Keys.Current.Public()) {
			cfg.Keys.Next = append(cfg.Keys.Next, key.Public())
		}
	}
	if cfg.RSAKey == nil && cfg.Keys.Current != nil && cfg.Keys.Current.Algorithm() == token.RS256 {
		cfg.RSAKey = cfg.Keys.Current
	}
	for i, c := range cfg.Clients {
		if c.IDTokenSignedResponseAlg == string(token.RS256) && cfg.RSAKey == nil {
			return src.Errorf(fmt.Sprintf("clients[%d].id_token_signed_response_alg", i),
				"RS256 needs an RSA key: set [oidc] rsa_private_key (or rsa_private_key_file), or make Pasee's own key RSA")
		}
	}
	return nil
}

// checkClientURI accepts absolute URLs without fragment, and the custom
// schemes of native apps (com.example.app:/callback), but no userinfo.
func checkClientURI(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", u, err)
	case p.Scheme == "" || p.Fragment != "" || strings.Contains(u, "#"):
		return fmt.Errorf("%q must be an absolute URL without fragment", u)
	case p.User != nil:
		return fmt.Errorf("%q must not carry a user name or password", u)
	case (p.Scheme == "http" || p.Scheme == "https") && p.Host == "":
		return fmt.Errorf("%q has no host", u)
	case p.Scheme == "javascript" || p.Scheme == "data" || p.Scheme == "vbscript" || p.Scheme == "file":
		return fmt.Errorf("%q: scheme %s is refused", u, p.Scheme)
	}
	return nil
}

// Issuer is Pasee's issuer as an OpenID Provider: [jwt] iss when it is an
// http(s) URL, else hostname; an iss given that is no URL is refused, as
// the ID tokens' iss must be the discovery URL's prefix. The issuer must
// be hostname or below it, since Pasee serves the discovery document.
func (cfg *Config) Issuer() (string, error) {
	iss := strings.TrimSuffix(cfg.JWT.Iss, "/")
	if iss == "" {
		return cfg.Hostname, nil
	}
	p, err := url.Parse(iss)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
		return "", fmt.Errorf("with [[clients]] declared, iss is the OpenID issuer and must be an http(s) URL (or left out: hostname), not %q", cfg.JWT.Iss)
	}
	if iss != cfg.Hostname && !strings.HasPrefix(iss, cfg.Hostname+"/") {
		return "", fmt.Errorf("the OpenID issuer %q must be hostname (%s) or a path below it: Pasee serves <issuer>/.well-known/openid-configuration", iss, cfg.Hostname)
	}
	return iss, nil
}

// OpenIDClients returns the [[clients]] for the OpenID Provider.
func (cfg *Config) OpenIDClients() []openid.Client {
	out := make([]openid.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		out = append(out, openid.Client{
			ID: c.ID, Secret: c.Secret, Name: c.Name,
			RedirectURIs:           slices.Clone(c.RedirectURIs),
			PostLogoutRedirectURIs: slices.Clone(c.PostLogoutRedirectURIs),
			RS256:                  c.IDTokenSignedResponseAlg == string(token.RS256),
		})
	}
	return out
}

// openIDProvider builds the OpenID Provider, on its own storage in
// Pasee's database, for the [[clients]] and the built-in client of the
// administration page. Without [[clients]] and with an [jwt] iss that
// cannot be an OpenID issuer, it is nil (a warning says why): the
// administration page cannot log in, the rest of Pasee works as before.
func (a *App) openIDProvider(ctx context.Context, reg prometheus.Registerer, fl *flow.Flow, fs *flow.SQLStorage) (*openid.Provider, error) {
	cfg := a.Config
	issuer, err := cfg.Issuer()
	if err != nil && len(cfg.Clients) == 0 {
		a.Logger.Warn("Pasee is no OpenID Provider, so the administration page cannot log in: set [jwt] iss to hostname or leave it out", "error", err)
		return nil, nil
	}
	if err != nil {
		return nil, cfg.Source.Errorf("jwt.iss", "%v", err)
	}
	st, err := openid.OpenStorage(ctx, cfg.Storage.URL)
	if err != nil {
		return nil, fmt.Errorf("storage.url %s: %w", sqldb.Scrub(cfg.Storage.URL), err)
	}
	a.closers = append(a.closers, st)
	c := openid.Config{
		Service: a.Service, Storage: st, Keys: cfg.Keys, RSAKey: cfg.RSAKey, LegacyES256K: cfg.JWT.LegacyES256K,
		Issuer: issuer, PublicURL: cfg.Hostname, Clients: append(cfg.OpenIDClients(), adminClient(cfg.Hostname)),
		AccessTTL: cfg.JWT.AccessTTL.Or(15 * time.Minute), Logger: a.Logger, Registerer: reg,
	}
	if fl != nil {
		c.Flow, c.FlowStorage = fl, fs
	}
	return openid.New(c)
}

// adminClient is the administration page as a client: public (PKCE), its
// only redirect and post-logout redirect URI the page itself.
func adminClient(hostname string) openid.Client {
	own := adminui.RedirectURI(hostname)
	return openid.Client{ID: adminui.ClientID, Name: adminui.ClientName, RedirectURIs: []string{own}, PostLogoutRedirectURIs: []string{own}}
}
