// Package app builds a running Kisee from its settings: it loads and checks
// the settings file, opens the backend and the token store, and wires the
// service, the HTTP API and the background jobs. cmd/kisee and the tests
// use it alike.
package app

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/mail"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Settings is Kisee's settings file, as README.md documents it.
type Settings struct {
	Server struct {
		Host           string   `toml:"host"`
		Port           int      `toml:"port"`
		Hostname       string   `toml:"hostname"`
		TrustedProxies []string `toml:"trusted_proxies"`
		Debug          bool     `toml:"debug"` // accepted from the original settings; turns on debug logs
	} `toml:"server"`
	IdentityBackend struct {
		Class   string         `toml:"class"`
		Options map[string]any `toml:"options"`
		// AllowInsecureHTTP accepts a remote backend's plain-http url or
		// jwks_url on a host that is not loopback (with a warning).
		AllowInsecureHTTP bool `toml:"allow_insecure_http"`
	} `toml:"identity_backend"`
	Storage struct {
		// URL of the database where Kisee keeps issued tokens. Default: the
		// sql backend's database, else sqlite:kisee.db.
		URL string `toml:"url"`
	} `toml:"storage"`
	Email        EmailSettings `toml:"email"`
	JWT          JWTSettings   `toml:"jwt"`
	Registration struct {
		Enabled bool `toml:"enabled"`
	} `toml:"registration"`
	RateLimit settings.RateLimit `toml:"rate_limit"`
	CORS      struct {
		AllowedOrigins   []string `toml:"allowed_origins"`
		AllowCredentials bool     `toml:"allow_credentials"`
	} `toml:"cors"`
	Log settings.Log `toml:"log"`
}

// JWTSettings is the [jwt] table.
type JWTSettings struct {
	Iss          string            `toml:"iss"`
	TTL          settings.Duration `toml:"ttl"`
	LegacyES256K bool              `toml:"legacy_es256k"`
	settings.Keys
}

// EmailSettings is the [email] table (password recovery). Email is on when
// host is set; see mail.go for the defaults and checks.
type EmailSettings struct {
	Host         string `toml:"host"`
	Port         int    `toml:"port"`
	Sender       string `toml:"sender"`
	Security     string `toml:"security"`
	Username     string `toml:"username"`
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"`
	// CAFile is a PEM bundle of the roots that verify the SMTP server's
	// certificate, instead of the system's.
	CAFile  string            `toml:"ca_file"`
	Timeout settings.Duration `toml:"timeout"` // connection and each command; default 10 s
	// Attempts per email (default 5), the first retry after RetryDelay
	// (default 4 s), doubled each time, with jitter; QueueSize emails may
	// wait (default 256), beyond which they are dropped.
	Attempts      int               `toml:"attempts"`
	RetryDelay    settings.Duration `toml:"retry_delay"`
	QueueSize     int               `toml:"queue_size"`
	PasswordReset struct {
		Subject string            `toml:"subject"`
		Body    string            `toml:"body"`
		URL     string            `toml:"url"`
		TTL     settings.Duration `toml:"ttl"`
	} `toml:"password_reset"`
}

// Config is loaded, checked settings, with the file they came from.
type Config struct {
	Settings
	Source  *settings.Source
	Backend string // canonical backend class
	Keys    token.KeyRing
	// KeyFile is where a generated key is kept ("" when the key is inline).
	KeyFile      string
	KeyGenerated bool
	// Mail is the SMTP server of [email], nil when email is off.
	Mail *mail.Config
	// MailQueue tunes the outgoing queue (without logger and metrics).
	MailQueue mail.QueueConfig
	// ResetEmail is [email.password_reset], parsed.
	ResetEmail *kisee.ResetEmail
	// Warnings are settings accepted with a warning, logged at start.
	Warnings []string
	// admin is set for the administration commands, which send no email.
	admin bool
}

// SearchPaths are where `kisee` looks for settings.toml when no --settings
// flag is given.
func SearchPaths() []string {
	paths := []string{"settings.toml"}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, "settings.toml"))
	}
	return append(paths, "/etc/kisee/settings.toml")
}

// FindSettings returns the first existing file of SearchPaths, or "".
func FindSettings() string {
	for _, p := range SearchPaths() {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Load reads the settings file at path ("" for embedded defaults), applies
// KISEE_* environment overrides, and checks everything, loading the keys.
func Load(path string) (*Config, error) {
	src, err := settings.Open(path, "KISEE")
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
	if err := cfg.loadKeys(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadWithoutKeys reads and checks the settings at path but not the
// signing keys, for commands that never sign (healthcheck): they run where
// the key is not readable, such as a container's health probe.
func LoadWithoutKeys(path string) (*Config, error) {
	src, err := settings.OpenWithoutKeys(path, "KISEE")
	if err != nil {
		return nil, err
	}
	return checked(src)
}

// LoadForAdmin is LoadWithoutKeys for the administration commands
// (useradd, passwd, migrate, healthcheck): they send no email either, so
// [email] is not checked and its password_file is not read — an operator
// may run them where only the database's secrets are readable.
func LoadForAdmin(path string) (*Config, error) {
	src, err := settings.OpenWithoutKeys(path, "KISEE")
	if err != nil {
		return nil, err
	}
	src.SkipFile = func(key string) bool {
		return strings.HasSuffix(key, "private_key_file") || strings.HasPrefix(key, "email.")
	}
	cfg := &Config{Source: src, admin: true}
	return cfg, cfg.check()
}

func checked(src *settings.Source) (*Config, error) {
	cfg := &Config{Source: src}
	return cfg, cfg.check()
}

// paseeMarkers are keys only Pasee's settings have.
var paseeMarkers = []string{"identity_providers", "host", "port", "hostname", "private_key", "clients"}

func (cfg *Config) check() error {
	if err := cfg.Source.Foreign(cfg.Source.Decode(&cfg.Settings), "Pasee", paseeMarkers...); err != nil {
		return err
	}
	return cfg.defaults()
}

// backendAliases maps the original Python class names to backends.
var backendClasses = map[string]string{"sql": "sql", "demo": "demo", "test": "test", "htpasswd": "htpasswd", "ldap": "ldap", "sql-query": "sql-query", "remote": "remote"}

// canonicalClass accepts "demo" and the original "kisee.providers.demo.DemoBackend".
func canonicalClass(class string) (string, bool) {
	if c, ok := backendClasses[class]; ok {
		return c, true
	}
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		name := strings.ToLower(strings.TrimSuffix(class[i+1:], "Backend"))
		if c, ok := backendClasses[name]; ok {
			return c, true
		}
	}
	return "", false
}

func (cfg *Config) defaults() error {
	s, src := &cfg.Settings, cfg.Source
	if s.Server.Host == "" {
		s.Server.Host = "127.0.0.1"
	}
	if s.Server.Port == 0 {
		s.Server.Port = 8140
	}
	if s.Server.TrustedProxies == nil {
		// Pasee forwards logins with the end client's address in
		// X-Forwarded-For; on one host it reaches Kisee from the
		// loopback address, which only local processes can use.
		s.Server.TrustedProxies = DefaultTrustedProxies()
	}
	if s.Server.Port < 0 || s.Server.Port > 65535 {
		return src.Errorf("server.port", "port %d out of range", s.Server.Port)
	}
	if s.Server.Hostname == "" {
		host := s.Server.Host
		if host == "0.0.0.0" || host == "::" || host == "" {
			host = "localhost"
		}
		s.Server.Hostname = "http://" + net.JoinHostPort(host, strconv.Itoa(s.Server.Port))
	}
	if !strings.HasPrefix(s.Server.Hostname, "http://") && !strings.HasPrefix(s.Server.Hostname, "https://") {
		return src.Errorf("server.hostname", "must be an absolute http(s) URL such as https://id.example.com, not %q", s.Server.Hostname)
	}
	s.Server.Hostname = strings.TrimSuffix(s.Server.Hostname, "/")
	if s.IdentityBackend.Class == "" {
		s.IdentityBackend.Class = "sql"
	}
	class, ok := canonicalClass(s.IdentityBackend.Class)
	if !ok {
		return src.Errorf("identity_backend.class", "unknown backend %q (one of: sql, demo, test, htpasswd, ldap, sql-query, remote)", s.IdentityBackend.Class)
	}
	cfg.Backend = class
	if s.JWT.Iss == "" {
		s.JWT.Iss = s.Server.Hostname
	}
	if err := src.Positive("jwt.ttl", s.JWT.TTL); err != nil {
		return err
	}
	if s.JWT.TTL == 0 {
		s.JWT.TTL = settings.Duration(3600e9)
	}
	if err := cfg.checkRemoteURLs(); err != nil {
		return err
	}
	if cfg.admin {
		return src.CheckLog("log", s.Log)
	}
	if err := src.Positive("email.password_reset.ttl", s.Email.PasswordReset.TTL); err != nil {
		return err
	}
	if err := cfg.emailDefaults(); err != nil {
		return err
	}
	if err := src.CheckLog("log", s.Log); err != nil {
		return err
	}
	return nil
}

// LogSettings logs, once at start, where the settings came from (the
// address really listened on, when the embedded defaults were moved by the
// environment) and the settings accepted with a warning. The environment
// variables applied are logged by Run, once the backend's options are read.
func (cfg *Config) LogSettings(logger *slog.Logger) {
	addr := net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))
	if cfg.Source.File == settings.DefaultsName {
		logger.Info("no settings file found: running on embedded defaults (SQLite kisee.db, key kisee-key.pem, "+addr+")", "searched", SearchPaths())
	} else {
		logger.Info("settings loaded", "file", cfg.Source.File)
	}
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
}

// checkRemoteURLs refuses a remote backend's plain-http url or jwks_url
// on a host that is not loopback: the users' passwords would cross it in
// clear, or keys that anyone on the path could replace.
func (cfg *Config) checkRemoteURLs() error {
	if cfg.Backend != "remote" {
		return nil
	}
	for _, name := range []string{"url", "jwks_url"} {
		raw, _ := cfg.IdentityBackend.Options[name].(string)
		if v, ok := cfg.Source.Getenv(cfg.Source.EnvName("identity_backend.options." + name)); ok {
			raw = v
		}
		warning, err := cfg.Source.CheckHTTPS("identity_backend.options."+name, raw, cfg.IdentityBackend.AllowInsecureHTTP, "identity_backend.allow_insecure_http")
		if err != nil {
			return err
		}
		if warning != "" {
			cfg.Warnings = append(cfg.Warnings, warning)
		}
	}
	return nil
}

// DefaultTrustedProxies are the addresses whose X-Forwarded-For Kisee
// believes when the settings do not list any (trusted_proxies absent; an
// empty list trusts none): the loopback addresses 127.0.0.1 and ::1, from
// which a Pasee or a reverse proxy on the same host connects. Not the whole
// of 127.0.0.0/8: other loopback addresses are clients like any other.
func DefaultTrustedProxies() []string { return []string{"127.0.0.1", "::1"} }

// StorageURL is where Kisee keeps its tokens.
func (cfg *Config) StorageURL(backendURL string) string {
	switch {
	case cfg.Storage.URL != "":
		return cfg.Storage.URL
	case backendURL != "":
		return backendURL
	}
	return "sqlite:kisee.db"
}

// loadKeys reads the signing key and the published rotation keys.
func (cfg *Config) loadKeys() error {
	var err error
	cfg.Keys, cfg.KeyGenerated, err = cfg.Source.KeyRing("jwt", cfg.JWT.Keys, DefaultKeyFile, "kisee")
	if cfg.KeyGenerated || (err == nil && cfg.Source.File == settings.DefaultsName && cfg.JWT.PrivateKey == "") {
		cfg.KeyFile = DefaultKeyFile
	}
	return err
}

// DefaultKeyFile is where Kisee keeps its generated key when it runs
// without a settings file.
const DefaultKeyFile = "kisee-key.pem"
