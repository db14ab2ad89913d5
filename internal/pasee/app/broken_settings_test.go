package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each broken file of testdata/broken stops start-up with its file, line
// and key, in words an operator understands.
func TestBrokenSettingsFiles(t *testing.T) {
	cases := []struct {
		file string
		want string // the start of the error after the file name
		not  []string
	}{
		{"access-ttl-number.toml", `:4: jwt.access_ttl: want a duration with a unit, such as "90s", "15m" or "720h", got a bare number`, nil},
		{"refresh-ttl-zero.toml", `:3: jwt.refresh_ttl: must be more than zero`, nil},
		{"port-string.toml", `:2: port: want an integer, got a string`, []string{"struct", "toml:\""}},
		{"kisee-settings.toml", ` looks like a Kisee settings file`, nil},
		{"kisee-plain-http.toml", `:7: identity_providers[0].endpoint: "http://kisee.example.com/" is plain http`, nil},
		{"jwks-plain-http.toml", `:9: identity_providers[0].settings.jwks_url: "http://kisee.example.com/jwks.json" is plain http`, nil},
		{"key-file-not-pem.toml", `:3: jwt.private_key_file: testdata/broken/not-a-key.pem`, nil},
		{"provider-option-type.toml", `:9: identity_providers[0].settings.claims: want a list of strings, got a string`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", tc.file)
			cfg, err := Load(path)
			if err == nil {
				_, err = cfg.Providers()
				if err == nil {
					t.Fatal("loaded")
				}
			}
			if !strings.HasPrefix(err.Error(), path+tc.want) {
				t.Fatalf("error:\n%v\nwant it to start with:\n%s%s", err, path, tc.want)
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Fatalf("error %q shows %q", err, n)
				}
			}
		})
	}
}

// The zero grace window stays allowed: "0s" turns it off.
func TestZeroReuseGraceAllowed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pasee.toml")
	data := "[jwt]\nprivate_key_file = \"" + filepath.Join("testdata", "broken", "key.pem") + "\"\nrefresh_reuse_grace = \"0s\"\n[[identity_providers]]\nname = \"kisee\"\nprotocol = \"kisee\"\nendpoint = \"http://kisee.example.com/\"\nallow_insecure_http = true\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "allow_insecure_http = true") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}

// With no settings file, PASEE_IDENTITY_PROVIDERS_0_* apply to the
// embedded default provider, and a variable that overrides nothing is
// refused.
func TestEnvironmentWithoutSettingsFile(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PASEE_IDENTITY_PROVIDERS_0_ENDPOINT", "http://127.0.0.1:9140/")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.IdentityProviders[0].Endpoint; got != "http://127.0.0.1:9140/" {
		t.Fatalf("endpoint %q", got)
	}
	t.Setenv("PASEE_PROT", "1")
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), "PASEE_PROT: unknown variable") {
		t.Fatalf("err = %v", err)
	}
}
