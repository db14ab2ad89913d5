package deploytest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/deploytest"
)

const kiseeOK = `
[server]
hostname = "https://id.example.com"
trusted_proxies = ["127.0.0.1"]
[identity_backend]
class = "ldap"
[identity_backend.options]
url = "ldaps://ldap.example.com"
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "cn=kisee,dc=example,dc=com"
bind_password_file = "/nonexistent/bind-password"
[jwt]
private_key_file = "/nonexistent/key.pem"
`

const paseeOK = `
hostname = "https://auth.example.com"
[jwt]
private_key_file = "/nonexistent/key.pem"
[storage]
url = "postgres://pasee@/pasee?host=/run/postgresql"
[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = "https://id.example.com/"
[identity_providers.settings]
claims = ["email"]
[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
preset = "github"
app_id = "x"
app_secret_file = "/nonexistent/github-secret"
`

func write(t *testing.T, name, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Secret files named in the settings, which do not exist here, are stood
// in for: the files load, with a real key.
func TestSecretFilesAreStoodIn(t *testing.T) {
	k := deploytest.CheckKisee(t, write(t, "kisee-ok.toml", kiseeOK), nil)
	if k.Keys.Current == nil || k.Backend != "ldap" {
		t.Errorf("kisee: key %v, backend %q", k.Keys.Current, k.Backend)
	}
	p, err := deploytest.LoadPasee(t, write(t, "pasee-ok.toml", paseeOK), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Keys.Current == nil || len(p.IdentityProviders) != 2 {
		t.Errorf("pasee: key %v, providers %v", p.Keys.Current, p.IdentityProviders)
	}
	// A key file given by the environment (a compose service's) too.
	env := map[string]string{"KISEE_JWT_PRIVATE_KEY_FILE": "/run/secrets/key.pem", "OTHER": "ignored"}
	deploytest.CheckKisee(t, write(t, "kisee-env.toml", strings.Replace(kiseeOK, `private_key_file = "/nonexistent/key.pem"`, "", 1)), env)
}

// What the services would refuse at start, the check refuses too.
func TestMistakesAreCaught(t *testing.T) {
	for name, c := range map[string]struct {
		kisee bool
		doc   string
		env   map[string]string
		want  string
	}{
		"unknown key":              {true, kiseeOK + "\n[server2]\nport = 1\n", nil, "unknown key"},
		"unknown backend option":   {true, strings.Replace(kiseeOK, "base_dn", "basedn", 1), nil, "basedn"},
		"bad trusted proxy":        {true, strings.Replace(kiseeOK, `"127.0.0.1"]`, `"localhost"]`, 1), nil, "trusted proxy"},
		"no signing key":           {true, strings.Replace(kiseeOK, `private_key_file = "/nonexistent/key.pem"`, "", 1), nil, "missing signing key"},
		"bad database URL":         {true, "[identity_backend.options]\nurl = \"mysql://kisee\"\n[jwt]\nprivate_key_file = \"k.pem\"\n", nil, "mysql"},
		"environment applied":      {false, paseeOK, map[string]string{"PASEE_JWT_ACCESS_TTL": "soon"}, "PASEE_JWT_ACCESS_TTL"},
		"unknown provider setting": {false, strings.Replace(paseeOK, `claims = ["email"]`, `claim = ["email"]`, 1), nil, "claim"},
		"unknown oauth2 setting":   {false, strings.Replace(paseeOK, `preset = "github"`, `preset = "github"`+"\nscope = [\"x\"]", 1), nil, "scope"},
		"two registrations":        {false, strings.NewReplacer(`protocol = "kisee"`, "protocol = \"kisee\"\nregistration = true", `protocol = "oauth2"`, "protocol = \"oauth2\"\nregistration = true").Replace(paseeOK), nil, "both have registration"},
		"bad storage URL":          {false, strings.Replace(paseeOK, "postgres://pasee@/pasee?host=/run/postgresql", "mysql://pasee", 1), nil, "mysql"},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			if c.kisee {
				_, err = deploytest.LoadKisee(t, write(t, "kisee-bad.toml", c.doc), c.env)
			} else {
				_, err = deploytest.LoadPasee(t, write(t, "pasee-bad.toml", c.doc), c.env)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
