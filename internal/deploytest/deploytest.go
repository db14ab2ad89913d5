// Package deploytest loads the settings files the repository ships —
// configs/*.toml, deploy/compose/*.toml — with the real loaders of Kisee
// and Pasee, as the services do at start, so that none of them can rot
// unnoticed. It is used by the tests of configs/ and deploy/.
//
// A shipped file names its secrets by path (private_key_file,
// password_file, app_secret_file...), and the loader reads those files:
// they must exist. The check therefore generates each one in a temporary
// directory — a real signing key for private_key_file — and points the
// loader at it through the environment override the loader applies anyway
// (KISEE_JWT_PRIVATE_KEY_FILE, PASEE_IDENTITY_PROVIDERS_1_SETTINGS_APP_SECRET_FILE...).
// Nothing else of the file is changed.
package deploytest

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	kiseeapp "github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/kisee/backend/htpasswd"
	"github.com/kisee-pasee/suite/internal/kisee/backend/ldap"
	"github.com/kisee-pasee/suite/internal/kisee/backend/remote"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/backend/sqlquery"
	"github.com/kisee-pasee/suite/internal/kisee/backend/static"
	paseeapp "github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Check loads path with the loader its base name calls for: kisee*.toml
// with Kisee's, pasee*.toml with Pasee's.
func Check(t *testing.T, path string, env map[string]string) {
	t.Helper()
	switch base := filepath.Base(path); {
	case strings.HasPrefix(base, "kisee"):
		CheckKisee(t, path, env)
	case strings.HasPrefix(base, "pasee"):
		CheckPasee(t, path, env)
	default:
		t.Fatalf("%s: the name says neither kisee nor pasee, so which loader reads it is unknown; name it kisee-*.toml or pasee-*.toml", path)
	}
}

// CheckKisee loads the Kisee settings file at path with kiseeapp.Load, in
// the environment env (a service's environment in a compose file; only
// its KISEE_* variables matter), then decodes the backend's options
// strictly and checks what Kisee checks before serving: database URLs,
// trusted proxies, CORS. It fails t on any error.
func CheckKisee(t *testing.T, path string, env map[string]string) *kiseeapp.Config {
	t.Helper()
	cfg, err := LoadKisee(t, path, env)
	if err != nil {
		t.Fatalf("kisee settings: %v", err)
	}
	return cfg
}

// LoadKisee is CheckKisee returning the error instead of failing t. t
// serves for the temporary files and environment only.
func LoadKisee(t *testing.T, path string, env map[string]string) (*kiseeapp.Config, error) {
	t.Helper()
	if err := prepare(t, path, "KISEE", env); err != nil {
		return nil, err
	}
	cfg, err := kiseeapp.Load(path)
	if err != nil {
		return nil, err
	}
	const key = "identity_backend.options"
	var opts any
	switch cfg.Backend {
	case "sql":
		opts = &sqlbackend.Options{}
	case "test":
		opts = &static.Options{}
	case "htpasswd":
		opts = &htpasswd.Options{}
	case "sql-query":
		opts = &sqlquery.Options{}
	case "ldap":
		opts = &ldap.Options{}
	case "remote":
		opts = &remote.Options{}
	case "demo":
		// No options: the original placeholders are ignored.
	default:
		return nil, fmt.Errorf("%s: backend %q is unknown to deploytest; add its options type there", path, cfg.Backend)
	}
	if opts != nil {
		if err := cfg.Source.DecodeSection(key, cfg.IdentityBackend.Options, opts); err != nil {
			return nil, err
		}
	}
	backendURL := "" // as internal/kisee/app opens the sql backend
	if o, ok := opts.(*sqlbackend.Options); ok {
		backendURL = cmp.Or(o.URL, cfg.Storage.URL, "sqlite:kisee.db")
	}
	for _, u := range []string{backendURL, cfg.StorageURL(backendURL)} {
		if u == "" {
			continue
		}
		if _, err := sqldb.ParseURL(u); err != nil {
			return nil, fmt.Errorf("%s: database URL: %w", path, err)
		}
	}
	if _, err := web.New(web.Config{
		Name: "kisee", Logger: discardLogger(),
		CORS:           web.CORSConfig{AllowedOrigins: cfg.CORS.AllowedOrigins, AllowCredentials: cfg.CORS.AllowCredentials},
		TrustedProxies: cfg.Server.TrustedProxies,
	}); err != nil {
		return nil, fmt.Errorf("%s: [server]/[cors]: %w", path, err)
	}
	return cfg, nil
}

// CheckPasee loads the Pasee settings file at path with paseeapp.Load, in
// the environment env (only its PASEE_* variables matter), then builds
// its identity providers (which decodes their settings strictly, without
// contacting them) and checks the storage URL, trusted proxies and CORS.
// A provider whose protocol this build does not have yet skips the test,
// saying so; any other error fails it.
func CheckPasee(t *testing.T, path string, env map[string]string) *paseeapp.Config {
	t.Helper()
	cfg, err := LoadPasee(t, path, env)
	if errors.Is(err, ErrNotInThisBuild) {
		t.Skipf("pasee settings %s: not checked past loading, because a provider protocol it uses is not implemented in this build yet: %v", path, err)
	}
	if err != nil {
		t.Fatalf("pasee settings: %v", err)
	}
	return cfg
}

// ErrNotInThisBuild wraps the error of a settings file that uses a
// provider protocol or backend this build does not have yet.
var ErrNotInThisBuild = errors.New("not available in this build")

// LoadPasee is CheckPasee returning the error instead of failing or
// skipping t. t serves for the temporary files and environment only.
func LoadPasee(t *testing.T, path string, env map[string]string) (*paseeapp.Config, error) {
	t.Helper()
	if err := prepare(t, path, "PASEE", env); err != nil {
		return nil, err
	}
	cfg, err := paseeapp.Load(path)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.Providers(); err != nil {
		if strings.Contains(err.Error(), "is not available in this build") {
			return cfg, fmt.Errorf("%w: %w", ErrNotInThisBuild, err)
		}
		return nil, err
	}
	if _, err := sqldb.ParseURL(cfg.Storage.URL); err != nil {
		return nil, fmt.Errorf("%s: storage.url: %w", path, err)
	}
	if _, err := web.New(web.Config{
		Name: "pasee", Logger: discardLogger(),
		CORS:           web.CORSConfig{AllowedOrigins: cfg.CORS.AllowedOrigins, AllowCredentials: cfg.CORS.AllowCredentials},
		TrustedProxies: cfg.TrustedProxies,
	}); err != nil {
		return nil, fmt.Errorf("%s: trusted_proxies/[cors]: %w", path, err)
	}
	return cfg, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// prepare sets env's variables of prefix, then replaces every secret file
// the settings name — in the file or in env — by a generated one.
func prepare(t *testing.T, path, prefix string, env map[string]string) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	src, err := settings.Parse(path, data, prefix)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if strings.HasPrefix(name, prefix+"_") {
			t.Setenv(name, env[name])
		}
	}
	s := &secrets{t: t, dir: t.TempDir()}
	fileKeys := map[string]string{} // environment variable → settings key
	walk(doc, "", func(key string) {
		if strings.HasSuffix(key, "_file") {
			fileKeys[src.EnvName(key)] = key
		}
	})
	for name := range env {
		if strings.HasPrefix(name, prefix+"_") && strings.HasSuffix(name, "_FILE") {
			fileKeys[name] = strings.ToLower(strings.TrimPrefix(name, prefix+"_"))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fileKeys)) {
		t.Setenv(name, s.file(fileKeys[name]))
	}
	return nil
}

// walk calls fn with the dotted key of every value of doc, with indexes
// for arrays of tables ("identity_providers[1].settings.app_secret_file").
func walk(doc map[string]any, prefix string, fn func(key string)) {
	for k, v := range doc {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			walk(v, key, fn)
		case []any:
			for i, e := range v {
				if m, ok := e.(map[string]any); ok {
					walk(m, fmt.Sprintf("%s[%d]", key, i), fn)
				}
			}
			fn(key)
		default:
			fn(key)
		}
	}
}

// secrets generates the files a settings file names.
type secrets struct {
	t   *testing.T
	dir string
	key *token.PrivateKey
	n   int
}

// file writes a stand-in for the secret at key and returns its path: a
// real private key (RSA for rsa_private_key_file), its public half, a CA
// certificate, a database URL, or an opaque secret, as the key's name says.
func (s *secrets) file(key string) string {
	s.t.Helper()
	if s.key == nil {
		k, err := token.GenerateKey(token.ES256)
		if err != nil {
			s.t.Fatal(err)
		}
		s.key = k
	}
	name := key[strings.LastIndexAny(key, ".]")+1:]
	var data []byte
	var err error
	switch {
	case strings.HasSuffix(name, "rsa_private_key_file"):
		var rsa *token.PrivateKey
		if rsa, err = token.GenerateKey(token.RS256); err == nil {
			data, err = rsa.MarshalPEM()
		}
	case strings.HasSuffix(name, "private_key_file"):
		data, err = s.key.MarshalPEM()
	case strings.HasSuffix(name, "public_key_file"):
		data, err = s.key.Public().MarshalPEM()
	case strings.HasSuffix(name, "ca_file"), strings.HasSuffix(name, "ca_cert_file"):
		data, err = caCertificate()
	case strings.HasSuffix(name, "url_file"):
		data = []byte("postgres://test@localhost:5432/test\n")
	default: // long enough for the length checks of client secrets
		data = []byte("test secret, 32 characters long.\n")
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.n++
	path := filepath.Join(s.dir, fmt.Sprintf("%d-%s", s.n, name))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// caCertificate is a self-signed CA certificate in PEM.
func caCertificate() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploytest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
