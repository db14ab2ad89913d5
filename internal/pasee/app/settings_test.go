package app

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// The original Pasee's documented settings load: keys at the top level,
// a provider given by host and port, its key squeezed onto one line.
func TestOriginalSettingsLoad(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "original-pasee.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.Current.Algorithm() != token.ES256K || cfg.IdentityProviders[0].Endpoint != "http://127.0.0.1:8140/" || cfg.Hostname != "http://localhost:8150" {
		t.Fatalf("alg %s, endpoint %q, hostname %q", cfg.Keys.Current.Algorithm(), cfg.IdentityProviders[0].Endpoint, cfg.Hostname)
	}
	if _, err := cfg.Providers(); err != nil {
		t.Fatalf("providers: %v", err)
	}
}

func pemKey(t *testing.T) string {
	t.Helper()
	k, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := k.MarshalPEM()
	return "private_key = '''" + string(pem) + "'''\n"
}

const kiseeProvider = "[[identity_providers]]\nname = \"kisee\"\nprotocol = \"kisee\"\nendpoint = \"http://127.0.0.1:8140/\"\n"

// Each settings mistake stops start-up with the file, the key and its line.
func TestSettingsErrorsNameFileKeyAndLine(t *testing.T) {
	k := pemKey(t)
	cases := []struct {
		name, doc, key, msg string
	}{
		{"bad provider name", k + "[[identity_providers]]\nname = \"Kisee\"\nprotocol = \"kisee\"\nendpoint = \"http://x/\"\n", "identity_providers[0].name", "[a-z0-9_]+"},
		{"duplicate provider", k + kiseeProvider + kiseeProvider, "identity_providers[1].name", "two providers"},
		{"two registrations", k + kiseeProvider + "registration = true\n" + strings.Replace(kiseeProvider, `"kisee"`+"\nprotocol", `"other"`+"\nprotocol", 1) + "registration = true\n", "identity_providers[1].registration", "at most one"},
		{"unknown protocol", k + "[[identity_providers]]\nname = \"x\"\nprotocol = \"saml\"\n", "identity_providers[0].protocol", "unknown protocol"},
		{"no endpoint", k + "[[identity_providers]]\nname = \"x\"\nprotocol = \"kisee\"\n", "identity_providers[0].endpoint", "missing required value"},
		{"no provider", k, "identity_providers", "no identity provider"},
		{"key twice", k + "[jwt]\n" + k + kiseeProvider, "private_key", "twice"},
		{"no key", kiseeProvider, "jwt.private_key", "missing signing key"},
		{"hostname", "hostname = \"pasee.example.com\"\n" + k + kiseeProvider, "hostname", "absolute http(s) URL"},
		{"redirect uri with fragment", k + "[cors]\nallowed_redirect_uris = [\"https://app.example.com/cb#x\"]\n" + kiseeProvider, "cors.allowed_redirect_uris[0]", "without fragment"},
		{"provider settings typo", k + kiseeProvider + "[identity_providers.settings]\njwks_uri = \"http://x/\"\n", "identity_providers[0].settings.jwks_uri", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := settings.Parse("pasee.toml", []byte(tc.doc), "")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := FromSource(src)
			if err == nil {
				_, err = cfg.Providers()
			}
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a settings error", err, err)
			}
			if se.File != "pasee.toml" || se.Key != tc.key || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("err = %q, want pasee.toml: %s: ...%s...", err, tc.key, tc.msg)
			}
			if se.Line == 0 && src.Has(tc.key) {
				t.Fatalf("err = %q names no line for a key that is in the file", err)
			}
		})
	}
}

// append, remove and groups work on the configured store; the original
// "--append" spelling still works; a user name without its provider is
// refused with a suggestion.
func TestAdministrationCommands(t *testing.T) {
	dir := t.TempDir()
	settingsFile := filepath.Join(dir, "pasee.toml")
	doc := pemKey(t) + "[storage]\nurl = \"sqlite:" + filepath.Join(dir, "pasee.db") + "\"\n" + kiseeProvider
	if err := writeFile(settingsFile, doc); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}, "26.11.0")
		return out.String() + errOut.String(), code
	}
	if out, code := run("append", "--groups", "staff,articles.writers", "kisee-alice", "--settings-file", settingsFile); code != 0 {
		t.Fatalf("append: %d %s", code, out)
	}
	if out, code := run("--settings", settingsFile, "--append", "--groups", "staff", "kisee-bob"); code != 0 {
		t.Fatalf("--append: %d %s", code, out)
	}
	if out, _ := run("--settings-file", settingsFile, "groups", "kisee-alice"); out != "articles.writers\nstaff\n" {
		t.Fatalf("groups of alice: %q", out)
	}
	if out, _ := run("--settings-file", settingsFile, "groups"); !strings.Contains(out, "articles.staff\narticles.writers\narticles.writers.staff\nstaff\n") {
		t.Fatalf("all groups (missing ones created with their .staff): %q", out)
	}
	if out, code := run("--settings-file", settingsFile, "remove", "--groups", "staff", "kisee-alice"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %s", code, out)
	}
	if out, code := run("--settings-file", settingsFile, "append", "--groups", "staff", "alice"); code == 0 || !strings.Contains(out, "did you mean kisee-alice") {
		t.Fatalf("append of a name without provider: %d %s", code, out)
	}
	if out, code := run("--settings-file", settingsFile, "append", "--groups", "Bad..Name", "kisee-alice"); code == 0 {
		t.Fatalf("append to a bad group name: %s", out)
	}
	if out, code := run("--settings-file", settingsFile, "append", "kisee-alice"); code != 2 || !strings.Contains(out, "Usage: pasee append") {
		t.Fatalf("append without groups: %d %s", code, out)
	}
}

// With no settings file, Pasee runs on embedded defaults (SPEC 1): SQLite
// in the working directory, a key generated once and kept next to it,
// 127.0.0.1:8150, one provider "kisee" at the Kisee of the defaults.
func TestEmbeddedDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 8150 || cfg.Storage.URL != "sqlite:pasee.db" || !cfg.KeyGenerated {
		t.Fatalf("defaults: %s:%d %s generated=%v", cfg.Host, cfg.Port, cfg.Storage.URL, cfg.KeyGenerated)
	}
	p := cfg.IdentityProviders
	if len(p) != 1 || p[0].Name != "kisee" || p[0].Protocol != "kisee" || p[0].Endpoint != "http://127.0.0.1:8140/" || !p[0].Registration {
		t.Fatalf("default provider: %+v", p)
	}
	again, err := Load("")
	if err != nil || again.KeyGenerated || again.Keys.Current.KeyID() != cfg.Keys.Current.KeyID() {
		t.Fatalf("second start: %v, generated=%v, same key=%v", err, again.KeyGenerated, again.Keys.Current.KeyID() == cfg.Keys.Current.KeyID())
	}
}
