package app_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/kisee/mail"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

func load(t *testing.T, doc string) (*app.Config, error) {
	t.Helper()
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := key.MarshalPEM()
	doc = "[server]\nhostname = \"https://id.example.com\"\n[jwt]\nprivate_key = '''" + string(pem) + "'''\n" + doc
	src, err := settings.Parse("kisee.toml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	return app.FromSource(src)
}

// lineOf is the 1-based line of the first occurrence of s in the document
// load builds.
func lineOf(t *testing.T, doc, s string) int {
	t.Helper()
	i := strings.Index(doc, s)
	if i < 0 {
		t.Fatalf("%q not in the document", s)
	}
	// load prepends the [server] and [jwt] tables: count them too.
	key, _ := token.GenerateKey(token.ES256)
	pem, _ := key.MarshalPEM()
	prefix := "[server]\nhostname = \"https://id.example.com\"\n[jwt]\nprivate_key = '''" + string(pem) + "'''\n"
	return strings.Count(prefix, "\n") + strings.Count(doc[:i], "\n") + 1
}

func TestEmailDefaults(t *testing.T) {
	cfg, err := load(t, "[email]\nhost = \"smtp.example.com\"\nsender = \"Kisee <kisee@example.com>\"\n")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Mail
	if m == nil || m.Port != 25 || m.Security != mail.Opportunistic || m.Timeout != 10*time.Second || m.RootCAs != nil {
		t.Fatalf("mail config %+v", m)
	}
	if q := cfg.MailQueue; q.Attempts != 5 || q.RetryDelay != 4*time.Second || q.Size != 256 {
		t.Fatalf("queue %+v", q)
	}
	if cfg.Email.PasswordReset.TTL.D() != 12*time.Hour {
		t.Fatalf("reset ttl %s", cfg.Email.PasswordReset.TTL.D())
	}
	_, body, err := cfg.ResetEmail.Render(kiseeData())
	if err != nil || !strings.Contains(body, "https://id.example.com/password_recoveries/?token=TOKEN") || !strings.Contains(body, "12 hours") {
		t.Fatalf("default body %q (%v)", body, err)
	}

	cfg, err = load(t, "[email]\nhost = \"smtp.example.com\"\nport = 465\nsender = \"kisee@example.com\"\n")
	if err != nil || cfg.Mail.Security != mail.TLS {
		t.Fatalf("port 465: %v %+v", err, cfg.Mail)
	}
	cfg, err = load(t, "[email]\nhost = \"smtp.example.com\"\nsecurity = \"tls\"\nsender = \"kisee@example.com\"\n")
	if err != nil || cfg.Mail.Port != 465 {
		t.Fatalf("tls: %v %+v", err, cfg.Mail)
	}
	// No [email]: email is off, the templates still have their defaults.
	cfg, err = load(t, "")
	if err != nil || cfg.Mail != nil || cfg.ResetEmail == nil {
		t.Fatalf("no [email]: %v %+v", err, cfg.Mail)
	}
}

func TestEmailPasswordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, "[email]\nhost = \"smtp.example.com\"\nsender = \"kisee@example.com\"\nusername = \"kisee\"\npassword_file = \""+file+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mail.Password != "from-a-file" || cfg.Mail.Username != "kisee" {
		t.Fatalf("credentials %q", cfg.Mail.Username)
	}
}

func kiseeData() kisee.ResetEmailData {
	return kisee.ResetEmailData{Username: "alice", Token: "TOKEN", ExpiresIn: "12 hours"}
}

// Several [email] values without a host: the error names the first key of
// the [email] table's documented order, every time (the check once ranged
// over a map, and named a random one).
func TestEmailWithoutHostNamesOneKey(t *testing.T) {
	doc := "[email]\nusername = \"kisee\"\nport = 587\nsender = \"kisee@example.com\"\nca_file = \"/x\"\n"
	for range 30 {
		_, err := load(t, doc)
		var se *settings.Error
		if !errors.As(err, &se) || se.Key != "email.sender" {
			t.Fatalf("error %v, want one naming email.sender", err)
		}
	}
}

// A mistake in [email] stops start-up with the key and its line.
func TestEmailSettingsErrors(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const base = "[email]\nhost = \"smtp.example.com\"\nsender = \"kisee@example.com\"\n"
	cases := []struct {
		name, doc, key, at, msg string
	}{
		{"sender without host", "[email]\nsender = \"kisee@example.com\"\n", "email.sender", "sender =", "email.host is not"},
		{"missing sender", "[email]\nhost = \"smtp.example.com\"\n", "email.sender", "[email]", "missing"},
		{"bad sender", "[email]\nhost = \"smtp.example.com\"\nsender = \"kisee\"\n", "email.sender", "sender =", "not an email address"},
		{"bad security", base + "security = \"ssl\"\n", "email.security", "security =", "unknown security"},
		{"465 without tls", base + "port = 465\nsecurity = \"starttls\"\n", "email.security", "security =", "implicit TLS"},
		{"port out of range", base + "port = 70000\n", "email.port", "port =", "out of range"},
		{"username without password", base + "username = \"kisee\"\n", "email.password", "[email]", "give password"},
		{"password without username", base + "password = \"secret-pw\"\n", "email.username", "[email]", "give the username"},
		{"bad ca_file", base + "ca_file = \"" + caFile + "\"\n", "email.ca_file", "ca_file =", "no PEM certificate"},
		{"missing ca_file", base + "ca_file = \"/nonexistent/ca.pem\"\n", "email.ca_file", "ca_file =", "no such file"},
		{"too many attempts", base + "attempts = 50\n", "email.attempts", "attempts =", "between 1 and 20"},
		{"body does not parse", base + "[email.password_reset]\nbody = '''\nHello {{.Username}},\nopen {{.URL\n'''\n", "email.password_reset.body", "body =", "body:3"},
		{"unknown field", base + "[email.password_reset]\nsubject = \"Hi {{.Name}}\"\n", "email.password_reset.subject", "subject =", "Name"},
		{"unknown function", base + "[email.password_reset]\nbody = \"{{shout .Username}}\"\n", "email.password_reset.body", "body =", "shout"},
		{"url not absolute", base + "[email.password_reset]\nurl = \"/reset?token={{.Token}}\"\n", "email.password_reset.url", "url =", "absolute"},
		{"url uses .URL", base + "[email.password_reset]\nurl = \"{{.URL}}\"\n", "email.password_reset.url", "url =", "absolute"},
		{"negative ttl", base + "[email.password_reset]\nttl = \"-1h\"\n", "email.password_reset.ttl", "ttl =", "negative"},
		{"unknown key", base + "smtp_host = \"x\"\n", "email.smtp_host", "smtp_host", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.doc)
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a settings error", err)
			}
			if se.Key != tc.key || se.Line != lineOf(t, tc.doc, tc.at) || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("error %v (key %s, line %d); want key %s, line %d, message with %q", err, se.Key, se.Line, tc.key, lineOf(t, tc.doc, tc.at), tc.msg)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Fatal("the error shows the password")
			}
		})
	}
}
