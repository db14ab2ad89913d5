package settings

import (
	"strings"
	"testing"
)

// A bare number is no duration: go-toml would take it as nanoseconds, and
// `ttl = 5` would issue tokens that expire when issued. The environment
// refuses "5" the same way.
func TestDurationsNeedAUnit(t *testing.T) {
	var s testSettings
	err := parse(t, strings.Replace(doc, `access_ttl = "15m"`, `access_ttl = 900`, 1), nil).Decode(&s)
	wantError(t, err, 6, "jwt.access_ttl", `want a duration with a unit, such as "90s", "15m" or "720h", got a bare number`)

	err = parse(t, doc, map[string]string{"PASEE_JWT_ACCESS_TTL": "900"}).Decode(&s)
	if err == nil || !strings.Contains(err.Error(), "PASEE_JWT_ACCESS_TTL") || !strings.Contains(err.Error(), "invalid duration") {
		t.Fatalf("env bare number: %v", err)
	}
}

func TestZeroDurationRefusedWhenSet(t *testing.T) {
	src := parse(t, strings.Replace(doc, `"15m"`, `"0s"`, 1), nil)
	var s testSettings
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	wantError(t, src.Positive("jwt.access_ttl", s.JWT.AccessTTL), 6, "jwt.access_ttl", "must be more than zero")
	unset := parse(t, strings.Replace(doc, `access_ttl = "15m"`, ``, 1), nil)
	if err := unset.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if err := unset.Positive("jwt.access_ttl", s.JWT.AccessTTL); err != nil {
		t.Fatalf("an absent duration takes its default: %v", err)
	}
	env := parse(t, doc, map[string]string{"PASEE_JWT_ACCESS_TTL": "0s"})
	if err := env.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if err := env.Positive("jwt.access_ttl", s.JWT.AccessTTL); err == nil {
		t.Fatal("PASEE_JWT_ACCESS_TTL=0s accepted")
	}
}

// Type errors say what was wanted and what was found, in TOML's words, and
// never show Go types (which would list every field of the table).
func TestTypeErrorsInPlainWords(t *testing.T) {
	cases := []struct {
		from, to string
		line     int
		key, msg string
	}{
		{"port = 8150", `port = "8150"`, 2, "port", "want an integer, got a string"},
		{`host = "127.0.0.1"`, `host = 127`, 1, "host", "want a string, got an integer"},
		{`iss = "pasee.example.com"`, `iss = ["a"]`, 5, "jwt.iss", "want a string, got a list"},
		{`protocol = "oauth2"`, `protocol = true`, 14, "identity_providers[1].protocol", "want a string, got a boolean"},
		{"[jwt]", "[cors]\nallowed_origins = [1]\n[jwt]", 5, "cors.allowed_origins", "want a list of strings, got a list holding an integer"},
		{"[jwt]", "cors = 3\n[jwt]", 4, "cors", "want a table, got an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			var s testSettings
			err := parse(t, strings.Replace(doc, tc.from, tc.to, 1), nil).Decode(&s)
			wantError(t, err, tc.line, tc.key, tc.msg)
			for _, internal := range []string{"struct", "toml: ", "int64", "Go "} {
				if strings.Contains(err.Error(), internal) {
					t.Fatalf("%q shows Go internals (%s)", err, internal)
				}
			}
		})
	}
	t.Run("section", func(t *testing.T) {
		src := parse(t, strings.Replace(doc, `scopes = ["read:user"]`, `scopes = "read:user"`, 1), nil)
		var s testSettings
		if err := src.Decode(&s); err != nil {
			t.Fatal(err)
		}
		var o oauthOptions
		err := src.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o)
		wantError(t, err, 17, "identity_providers[1].settings.scopes", "want a list of strings, got a string")
	})
}

// An unknown PASEE_* variable stops start-up as an unknown key does; the
// variables of a free-form section are checked when it is decoded.
func TestUnknownEnvironmentVariables(t *testing.T) {
	env := map[string]string{"PASEE_PROT": "9000", "PASEE_TEST_POSTGRES_URL": "postgres://x", "PASEE_IDENTITY_PROVIDERS_1_SETTINGS_APP_IDD": "x"}
	src := parse(t, doc, env)
	src.Environ = func() []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}
	var s testSettings
	err := src.Decode(&s)
	if err == nil || !strings.Contains(err.Error(), "(environment): PASEE_PROT: unknown variable") || strings.Contains(err.Error(), "TEST") || strings.Contains(err.Error(), "APP_IDD") {
		t.Fatalf("Decode: %v", err)
	}
	delete(env, "PASEE_PROT")
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	var o oauthOptions
	err = src.DecodeSection("identity_providers[1].settings", s.Providers[1].Settings, &o)
	if err == nil || !strings.Contains(err.Error(), "PASEE_IDENTITY_PROVIDERS_1_SETTINGS_APP_IDD: unknown variable") {
		t.Fatalf("DecodeSection: %v", err)
	}
}

// The overrides applied are listed for the start-up log, secrets masked.
func TestOverridesListedWithSecretsMasked(t *testing.T) {
	src := parse(t, doc, map[string]string{
		"PASEE_PORT":            "9000",
		"PASEE_JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
		"PASEE_JWT_ISS":         "https://user:hunter2@id.example.com",
	})
	var s testSettings
	if err := src.Decode(&s); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range src.Overrides() {
		got[o.Name] = o.Key + "=" + o.Value
	}
	if got["PASEE_PORT"] != "port=9000" || got["PASEE_JWT_PRIVATE_KEY"] != "jwt.private_key=****" || strings.Contains(got["PASEE_JWT_ISS"], "hunter2") || len(got) != 3 {
		t.Fatalf("overrides %v", got)
	}
}
