package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type provider struct {
	Name     string         `toml:"name"`
	Protocol string         `toml:"protocol"`
	Settings map[string]any `toml:"settings"`
}

type testSettings struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	JWT  struct {
		Iss            string   `toml:"iss"`
		AccessTTL      Duration `toml:"access_ttl"`
		PrivateKey     string   `toml:"private_key"`
		PrivateKeyFile string   `toml:"private_key_file"`
	} `toml:"jwt"`
	CORS struct {
		AllowedOrigins []string `toml:"allowed_origins"`
	} `toml:"cors"`
	Providers []provider `toml:"identity_providers"`
}

type oauthOptions struct {
	AppID         string   `toml:"app_id"`
	AppSecret     string   `toml:"app_secret"`
	AppSecretFile string   `toml:"app_secret_file"`
	Scopes        []string `toml:"scopes"`
}

const doc = `host = "127.0.0.1"
port = 8150

[jwt]
iss = "pasee.example.com"
access_ttl = "15m"

[[identity_providers]]
name = "kisee"
protocol = "kisee"

[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
app_id = "abc"
scopes = ["read:user"]
`

func parse(t *testing.T, data string, env map[string]string) *Source {
	t.Helper()
	s, err := Parse("pasee.toml", []byte(data), "PASEE")
	if err != nil {
		t.Fatal(err)
	}
	s.Getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return s
}

func TestDecode(t *testing.T) {
	var got testSettings
	if err := parse(t, doc, nil).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Port != 8150 || got.JWT.AccessTTL.D() != 15*time.Minute || len(got.Providers) != 2 || got.Providers[1].Settings["app_id"] != "abc" {
		t.Fatalf("decoded %+v", got)
	}
}

func wantError(t *testing.T, err error, line int, key, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *settings.Error", err, err)
	}
	if e.File != "pasee.toml" || e.Line != line || e.Key != key || !strings.Contains(e.Msg, msg) {
		t.Fatalf("err = %q, want pasee.toml:%d: %s: ...%s...", err, line, key, msg)
	}
	if !strings.HasPrefix(err.Error(), "pasee.toml:") {
		t.Fatalf("error text %q does not start with the file", err)
	}
}

func TestErrorsNameFileKeyAndLine(t *testing.T) {
	t.Run("unknown key", func(t *testing.T) {
		var s testSettings
		err := parse(t, strings.Replace(doc, `iss = "pasee.example.com"`, `iss = "pasee.example.com"`+"\nissuer = \"x\"", 1), nil).Decode(&s)
		wantError(t, err, 6, "jwt.issuer", "unknown key")
	})
	t.Run("wrong type", func(t *testing.T) {
		var s testSettings
		err := parse(t, strings.Replace(doc, "port = 8150", `port = "8150"`, 1), nil).Decode(&s)
		wantError(t, err, 2, "port", "string")
	})
	t.Run("wrong type in second array table", func(t *testing.T) {
		var s testSettings
		err := parse(t, strings.Replace(doc, `protocol = "oauth2"`, `protocol = 2`, 1), nil).Decode(&s)
		wantError(t, err, 14, "identity_providers[1].protocol", "integer")
	})
	t.Run("bad duration", func(t *testing.T) {
		var s testSettings
		err := parse(t, strings.Replace(doc, `"15m"`, `"a quarter"`, 1), nil).Decode(&s)
		wantError(t, err, 6, "jwt.access_ttl", "invalid duration")
	})
	t.Run("syntax", func(t *testing.T) {
		_, err := Parse("pasee.toml", []byte("a = 1\nb = = 2\n"), "PASEE")
		wantError(t, err, 2, "", "invalid TOML")
	})
	t.Run("missing", func(t *testing.T) {
		src := parse(t, doc, nil)
		wantError(t, src.Missing("jwt.private_key"), 4, "jwt.private_key", "PASEE_JWT_PRIVATE_KEY")
	})
	t.Run("section", func(t *testing.T) {
		src := parse(t, doc+"client_secrett = \"typo\"\n", nil)
		var s testSettings
		if err := src.Decode(&s); err != nil {
			t.Fatal(err)
		}
		var o oauthOptions
		err := src.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o)
		wantError(t, err, 18, "identity_providers[1].settings.client_secrett", "unknown key")
	})
}

func TestEnvironmentOverrides(t *testing.T) {
	src := parse(t, doc, map[string]string{
		"PASEE_PORT":                                 "9000",
		"PASEE_JWT_ACCESS_TTL":                       "5m",
		"PASEE_CORS_ALLOWED_ORIGINS":                 "https://a.example, https://b.example",
		"PASEE_IDENTITY_PROVIDERS_0_NAME":            "internals",
		"PASEE_IDENTITY_PROVIDERS_1_SETTINGS_APP_ID": "from-env",
	})
	var s testSettings
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Port != 9000 || s.JWT.AccessTTL.D() != 5*time.Minute || len(s.CORS.AllowedOrigins) != 2 || s.Providers[0].Name != "internals" {
		t.Fatalf("env not applied: %+v", s)
	}
	var o oauthOptions
	if err := src.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o); err != nil {
		t.Fatal(err)
	}
	if o.AppID != "from-env" || len(o.Scopes) != 1 {
		t.Fatalf("section env not applied: %+v", o)
	}
	bad := parse(t, doc, map[string]string{"PASEE_PORT": "eighty"})
	err := bad.Decode(&s)
	if err == nil || !strings.Contains(err.Error(), "PASEE_PORT") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := parse(t, doc+"app_secret_file = \""+secret+"\"\n", nil)
	var s testSettings
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	var o oauthOptions
	if err := src.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o); err != nil {
		t.Fatal(err)
	}
	if o.AppSecret != "s3cret" {
		t.Fatalf("secret = %q", o.AppSecret)
	}
	both := parse(t, doc+"app_secret = \"x\"\napp_secret_file = \""+secret+"\"\n", nil)
	_ = both.Decode(&s)
	if err := both.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both set: %v", err)
	}
	missing := parse(t, strings.Replace(doc, "[jwt]", "[jwt]\nprivate_key_file = \"/nonexistent/key.pem\"", 1), nil)
	err := missing.Decode(&s)
	wantError(t, err, 5, "jwt.private_key_file", "cannot read secret file")
}

func TestDefaultsUseEnvironmentOnly(t *testing.T) {
	src := Defaults("PASEE")
	src.Getenv = func(k string) (string, bool) {
		if k == "PASEE_HOST" {
			return "0.0.0.0", true
		}
		return "", false
	}
	s := testSettings{Host: "127.0.0.1"}
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Host != "0.0.0.0" {
		t.Fatalf("host = %q", s.Host)
	}
}

// Embedded structs' keys belong to the enclosing table, for TOML, the
// environment and "_file" secrets alike.
func TestEmbeddedStructs(t *testing.T) {
	type Inner struct {
		Secret     string `toml:"secret"`
		SecretFile string `toml:"secret_file"`
	}
	type outer struct {
		Inner
		JWT struct {
			Inner
			Iss string `toml:"iss"`
		} `toml:"jwt"`
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := parse(t, "secret = \"top\"\n[jwt]\nsecret_file = \""+path+"\"\n", map[string]string{"PASEE_JWT_ISS": "env-iss"})
	var o outer
	if err := src.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if o.Secret != "top" || o.JWT.Secret != "from-file" || o.JWT.Iss != "env-iss" {
		t.Fatalf("%+v", o)
	}
}
