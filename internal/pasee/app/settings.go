// Package app builds a running Pasee from its settings: it loads and
// checks the settings file, opens the store, builds the identity providers,
// and wires the service and the HTTP API. cmd/pasee and the tests use it.
package app

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Settings is Pasee's settings file (SPEC section 3).
type Settings struct {
	Host           string   `toml:"host"`
	Port           int      `toml:"port"`
	Hostname       string   `toml:"hostname"`
	TrustedProxies []string `toml:"trusted_proxies"`
	// The original put the keys at the top level; [jwt] is accepted too.
	settings.Keys
	JWT struct {
		Iss               string            `toml:"iss"`
		Audience          string            `toml:"audience"`
		AccessTTL         settings.Duration `toml:"access_ttl"`
		RefreshTTL        settings.Duration `toml:"refresh_ttl"`
		RefreshReuseGrace settings.Duration `toml:"refresh_reuse_grace"`
		LegacyES256K      bool              `toml:"legacy_es256k"`
		settings.Keys
	} `toml:"jwt"`
	Storage struct {
		URL string `toml:"url"`
	} `toml:"storage"`
	IdentityProviders []ProviderSettings `toml:"identity_providers"`
	CORS              struct {
		AllowedOrigins      []string `toml:"allowed_origins"`
		AllowedRedirectURIs []string `toml:"allowed_redirect_uris"`
		AllowCredentials    bool     `toml:"allow_credentials"`
	} `toml:"cors"`
	RateLimit settings.RateLimit `toml:"rate_limit"`
	Log       settings.Log       `toml:"log"`
	// Clients and OIDC make Pasee an OpenID Provider (clients.go).
	Clients []ClientSettings `toml:"clients"`
	OIDC    OIDCSettings     `toml:"oidc"`
}

// ProviderSettings is one [[identity_providers]] entry.
type ProviderSettings struct {
	Name     string `toml:"name"`
	Protocol string `toml:"protocol"`
	Endpoint string `toml:"endpoint"`
	// Host, Port and Scheme are the original way to give the endpoint.
	Host         string         `toml:"host"`
	Port         int            `toml:"port"`
	Scheme       string         `toml:"scheme"`
	Registration bool           `toml:"registration"`
	Settings     map[string]any `toml:"settings"`
}

// Config is loaded, checked settings.
type Config struct {
	Settings
	Source       *settings.Source
	Keys         token.KeyRing
	KeyGenerated bool
	// RSAKey signs RS256 ID tokens ([oidc] rsa_private_key); nil: none.
	RSAKey *token.PrivateKey
}

// DefaultKeyFile is where Pasee keeps its generated key when it runs
// without a settings file.
const DefaultKeyFile = "pasee-key.pem"

// SearchPaths are where `pasee` looks for settings when none is given.
func SearchPaths() []string { return []string{"settings.toml", "/etc/pasee/settings.toml"} }

// FindSettings returns the first existing file of SearchPaths, or "".
func FindSettings() string {
	for _, p := range SearchPaths() {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Load reads the settings file at path ("" for embedded defaults).
func Load(path string) (*Config, error) {
	src, err := settings.Open(path, "PASEE")
	if err != nil {
		return nil, err
	}
	return FromSource(src)
}

// FromSource checks settings from src.
func FromSource(src *settings.Source) (*Config, error) {
	cfg, err := checked(src)
	if err != nil {
		return nil, err
	}
	keys := cfg.JWT.Keys
	prefix := "jwt"
	if cfg.Settings.Keys.PrivateKey != "" {
		if keys.PrivateKey != "" {
			return nil, src.Errorf("private_key", "the key is given twice: at the top level and in [jwt]; keep one")
		}
		// The original's top-level key, with rotation keys in either place.
		top := cfg.Settings.Keys
		top.PreviousPublicKeys = append(top.PreviousPublicKeys, keys.PreviousPublicKeys...)
		top.NextPublicKeys = append(top.NextPublicKeys, keys.NextPublicKeys...)
		keys, prefix = top, ""
	}
	if cfg.Keys, cfg.KeyGenerated, err = src.KeyRing(prefix, keys, DefaultKeyFile, "pasee"); err != nil {
		return nil, err
	}
	if err := cfg.loadRSAKey(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadWithoutKeys reads and checks the settings at path but not the
// signing keys, for the commands that never sign (append, remove, groups,
// migrate, healthcheck): an operator can run them where the service's key
// is not readable.
func LoadWithoutKeys(path string) (*Config, error) {
	src, err := settings.OpenWithoutKeys(path, "PASEE")
	if err != nil {
		return nil, err
	}
	return checked(src)
}

func checked(src *settings.Source) (*Config, error) {
	cfg := &Config{Source: src}
	if err := src.Decode(&cfg.Settings); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := cfg.checkOpenID(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var providerName = regexp.MustCompile(`^[a-z0-9_]+$`)

func (cfg *Config) check() error {
	s, src := &cfg.Settings, cfg.Source
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	if s.Port == 0 {
		s.Port = 8150
	}
	if s.Port < 0 || s.Port > 65535 {
		return src.Errorf("port", "port %d out of range", s.Port)
	}
	if s.Hostname == "" {
		host := s.Host
		if host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		s.Hostname = "http://" + net.JoinHostPort(host, strconv.Itoa(s.Port))
	}
	if !strings.HasPrefix(s.Hostname, "http://") && !strings.HasPrefix(s.Hostname, "https://") {
		return src.Errorf("hostname", "must be an absolute http(s) URL such as https://auth.example.com, not %q", s.Hostname)
	}
	s.Hostname = strings.TrimSuffix(s.Hostname, "/")
	if s.JWT.Iss == "" {
		s.JWT.Iss = s.Hostname
	}
	if s.Storage.URL == "" {
		s.Storage.URL = "sqlite:pasee.db"
	}
	if err := src.CheckLog("log", s.Log); err != nil {
		return err
	}
	for i, u := range s.CORS.AllowedRedirectURIs {
		p, err := url.Parse(u)
		if err != nil || p.Scheme == "" || p.Host == "" || p.Fragment != "" {
			return src.Errorf(fmt.Sprintf("cors.allowed_redirect_uris[%d]", i), "%q must be an absolute URL without fragment", u)
		}
	}
	if src.File == settings.DefaultsName && len(s.IdentityProviders) == 0 {
		// Embedded defaults: the Kisee of `make run`, its keys from its JWKS.
		s.IdentityProviders = []ProviderSettings{{Name: "kisee", Protocol: "kisee", Endpoint: "http://127.0.0.1:8140/", Registration: true}}
	}
	if len(s.IdentityProviders) == 0 {
		return src.Errorf("identity_providers", "no identity provider: add at least one [[identity_providers]] table")
	}
	seen := map[string]bool{}
	registration := ""
	for i := range s.IdentityProviders {
		p := &s.IdentityProviders[i]
		key := fmt.Sprintf("identity_providers[%d]", i)
		if !providerName.MatchString(p.Name) {
			return src.Errorf(key+".name", "provider names are [a-z0-9_]+ (they prefix user names), not %q", p.Name)
		}
		if seen[p.Name] {
			return src.Errorf(key+".name", "two providers are named %q", p.Name)
		}
		seen[p.Name] = true
		switch p.Protocol {
		case "kisee", "pasee", "oauth2", "oidc":
		default:
			return src.Errorf(key+".protocol", "unknown protocol %q (one of: kisee, pasee, oauth2, oidc)", p.Protocol)
		}
		if p.Registration {
			if registration != "" {
				return src.Errorf(key+".registration", "providers %q and %q both have registration = true; at most one may", registration, p.Name)
			}
			registration = p.Name
		}
		if p.Endpoint == "" && p.Host != "" && (p.Protocol == "kisee" || p.Protocol == "pasee") {
			scheme := p.Scheme
			if scheme == "" {
				scheme = "http"
				if p.Port == 443 {
					scheme = "https"
				}
			}
			hostport := p.Host
			if p.Port != 0 {
				hostport = net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
			}
			p.Endpoint = scheme + "://" + hostport + "/"
		}
		if p.Endpoint == "" && (p.Protocol == "kisee" || p.Protocol == "pasee") {
			return src.Errorf(key+".endpoint", "missing required value: the provider's base URL (or host and port)")
		}
		if p.Protocol == "oauth2" || p.Protocol == "oidc" {
			// Their addresses are in [identity_providers.settings] (preset or
			// auth_url..., issuer), and they take no registrations.
			switch {
			case p.Endpoint != "" || p.Host != "":
				return src.Errorf(key+".endpoint", "%s providers take no endpoint: set preset or auth_url, token_url, userinfo_url (oauth2), or issuer (oidc), in [identity_providers.settings]", p.Protocol)
			case p.Registration:
				return src.Errorf(key+".registration", "%s providers do not accept forwarded registrations", p.Protocol)
			}
		}
	}
	return nil
}

// Registration returns the name of the provider with registration = true.
func (cfg *Config) Registration() string {
	for _, p := range cfg.IdentityProviders {
		if p.Registration {
			return p.Name
		}
	}
	return ""
}
