package app

import (
	"context"
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
		{"ttl-number.toml", `:3: jwt.ttl: want a duration with a unit, such as "90s", "15m" or "720h", got a bare number`, nil},
		{"ttl-zero.toml", `:3: jwt.ttl: must be more than zero`, nil},
		{"ttl-negative.toml", `:2: jwt.ttl: negative duration`, nil},
		{"reset-ttl-zero.toml", `:2: email.password_reset.ttl: must be more than zero`, nil},
		{"port-string.toml", `:3: server.port: want an integer, got a string`, []string{"struct", "debug", "Debug", "toml:\""}},
		{"key-file-not-pem.toml", `:3: jwt.private_key_file: testdata/broken/not-a-key.pem`, nil},
		{"pasee-settings.toml", ` looks like a Pasee settings file`, nil},
		{"remote-plain-http.toml", `:4: identity_backend.options.url: "http://kisee.example.com/jwt/" is plain http`, nil},
		{"ldap-ca-cert-file.toml", `:6: identity_backend.options.ca_cert_file: `, nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", tc.file)
			cfg, err := Load(path)
			if err == nil {
				var a *App
				a, err = New(context.Background(), cfg, Options{NoMigrate: true})
				if err == nil {
					a.Close()
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

// allow_insecure_http = true accepts a remote backend on plain http, with
// a warning for the start-up log.
func TestAllowInsecureHTTP(t *testing.T) {
	dir := t.TempDir()
	data := "[identity_backend]\nclass = \"remote\"\nallow_insecure_http = true\n[identity_backend.options]\nurl = \"http://kisee.example.com/jwt/\"\njwks_url = \"http://kisee.example.com/jwks.json\"\n[jwt]\nprivate_key_file = \"" + filepath.Join("testdata", "broken", "key.pem") + "\"\n"
	path := filepath.Join(dir, "kisee.toml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 2 || !strings.Contains(cfg.Warnings[0], "plain http") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}
