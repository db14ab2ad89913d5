package settings_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	kiseeapp "github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// kiseeDoc is a realistic settings file: every table of Kisee's settings.
func kiseeDoc(f *testing.F) string {
	k, err := token.GenerateKey(token.ES256)
	if err != nil {
		f.Fatal(err)
	}
	pemKey, _ := k.MarshalPEM()
	pub, _ := k.Public().MarshalPEM()
	return `[server]
host = "127.0.0.1"
port = 8140
hostname = "https://id.example.com"
trusted_proxies = ["10.0.0.0/8"]

[identity_backend]
class = "kisee.providers.demo.DemoBackend"
[identity_backend.options]
no = "option required"

[storage]
url = "sqlite:kisee.db"

[email]
host = "smtp.example.com"
port = 587
sender = "Kisee <kisee@example.com>"
security = "starttls"
username = "kisee"
password = "smtp secret"
timeout = "5s"
attempts = 3
retry_delay = "1s"
[email.password_reset]
subject = "Reset {{.Username}}"
body = "Open {{.URL}} within {{.ExpiresIn}}."
url = "https://app.example.com/reset#token={{.Token}}"
ttl = "2h"

[jwt]
iss = "example.com"
ttl = "1h"
private_key = '''` + string(pemKey) + `'''
public_key = '''` + string(pub) + `'''

[registration]
enabled = true

[rate_limit]
max_failures = 20
window = "15m"
store = "memory"

[cors]
allowed_origins = ["https://app.example.com"]

[log]
format = "json"
level = "debug"
`
}

// FuzzSettings loads arbitrary settings files the way Kisee does
// (settings.Parse, Decode into its Settings, then every check of
// app.FromSource): no panic, and every refusal is a *settings.Error naming
// the file, as SPEC promises ("stops start-up with the file, key and
// line"). Documents naming files (*_file keys) are skipped: they would
// read the fuzzing machine's files.
func FuzzSettings(f *testing.F) {
	doc := kiseeDoc(f)
	f.Add([]byte(doc))
	f.Add([]byte(strings.Replace(doc, `port = 8140`, `port = "8140"`, 1)))
	f.Add([]byte(strings.Replace(doc, `ttl = "1h"`, `ttl = "-1h"`, 1)))
	f.Add([]byte(strings.Replace(doc, `[registration]`, `[registraton]`, 1)))
	f.Add([]byte(strings.Replace(doc, `{{.URL}}`, `{{.Nope}}`, 1)))
	f.Add([]byte("[[identity_providers]]\nname = \"a\"\n[identity_providers.settings]\nx = 1\n[[identity_providers]]\nname = \"b\"\n"))
	for _, s := range []string{"", "=", "[a]\n[a]\n", "a = 1\na = 2\n", "[server]\nport = 99999999999999999999\n", "[jwt]\nttl = \"9999999999h\"\n",
		"x = '''\n", "[server\n", "a.b.c = 1\n", "[[server]]\n", "\xff = 1\n", "[rate_limit]\nmax_failures = -1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte("_file")) || bytes.Contains(data, []byte("_FILE")) {
			t.Skip("names a file to read")
		}
		src, err := settings.Parse("kisee.toml", data, "KISEE")
		if err == nil {
			src.Getenv = func(string) (string, bool) { return "", false }
			_, err = kiseeapp.FromSource(src)
		}
		if err == nil {
			return
		}
		var se *settings.Error
		for _, e := range unwrapAll(err) {
			if errors.As(e, &se) {
				break
			}
		}
		if se == nil {
			t.Fatalf("error %q (%T) is not a *settings.Error", err, err)
		}
		if se.File != "kisee.toml" || !utf8.ValidString(err.Error()) || se.Line < 0 {
			t.Fatalf("error %q does not name the file (file %q, line %d)", err, se.File, se.Line)
		}
	})
}

// unwrapAll returns err and, for a joined error, its parts.
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return append([]error{err}, j.Unwrap()...)
	}
	return []error{err}
}
