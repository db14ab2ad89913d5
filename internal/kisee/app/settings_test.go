package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// The original Kisee's documented settings load as they are: the Python
// class name of the demo backend, its placeholder option, a secp256k1 key
// pair, [server] debug.
func TestOriginalSettingsLoad(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "original-kisee.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != "demo" || cfg.Keys.Current.Algorithm() != token.ES256K || cfg.JWT.Iss != "example.com" || !cfg.Server.Debug {
		t.Fatalf("backend %q, alg %s, iss %q, debug %v", cfg.Backend, cfg.Keys.Current.Algorithm(), cfg.JWT.Iss, cfg.Server.Debug)
	}
}

func key(t *testing.T) string {
	t.Helper()
	k, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := k.MarshalPEM()
	return "private_key = '''" + string(pem) + "'''\n"
}

// Each settings mistake stops start-up with the file, the key and its line.
func TestSettingsErrorsNameFileKeyAndLine(t *testing.T) {
	other, _ := token.GenerateKey(token.ES256)
	otherPub, _ := other.Public().MarshalPEM()
	cases := []struct {
		name, doc, key string
		line           int
		msg            string
	}{
		{"unknown backend", "[identity_backend]\nclass = \"mysql\"\n[jwt]\n" + key(t), "identity_backend.class", 2, "unknown backend"},
		{"unknown original class", "[identity_backend]\nclass = \"kisee.providers.nope.NopeBackend\"\n[jwt]\n" + key(t), "identity_backend.class", 2, "unknown backend"},
		{"port out of range", "[server]\nport = 70000\n[jwt]\n" + key(t), "server.port", 2, "out of range"},
		{"hostname not a URL", "[server]\nhostname = \"localhost:8140\"\n[jwt]\n" + key(t), "server.hostname", 2, "absolute http(s) URL"},
		{"no signing key", "[server]\nport = 8140\n", "jwt.private_key", 0, "missing signing key"},
		{"broken key", "[jwt]\nprivate_key = \"not a key\"\n", "jwt.private_key", 2, "PEM"},
		{"public key of another key", "[jwt]\n" + key(t) + "public_key = '''" + string(otherPub) + "'''\n", "jwt.public_key", 0, "does not match"},
		{"log format", "[log]\nformat = \"xml\"\n[jwt]\n" + key(t), "log.format", 2, "text"},
		{"unknown key", "[server]\nprot = 8140\n[jwt]\n" + key(t), "server.prot", 2, "unknown key"},
		{"wrong type", "[server]\nport = \"8140\"\n[jwt]\n" + key(t), "server.port", 2, "string"},
		{"backend option typo", "[identity_backend]\nclass = \"sql\"\n[identity_backend.options]\nurll = \"sqlite:x.db\"\n[jwt]\n" + key(t), "identity_backend.options.urll", 4, "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := settings.Parse("kisee.toml", []byte(tc.doc), "")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := FromSource(src)
			if err == nil && strings.Contains(tc.key, "options") {
				_, err = New(context.Background(), cfg, Options{NoMigrate: true})
			}
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a settings error", err, err)
			}
			if se.File != "kisee.toml" || se.Key != tc.key || (tc.line != 0 && se.Line != tc.line) || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("err = %q, want kisee.toml:%d: %s: ...%s...", err, tc.line, tc.key, tc.msg)
			}
		})
	}
}

// The CLI: quickstart writes settings that load and refuses to overwrite
// them; useradd and passwd manage users of the sql backend, reading
// passwords from standard input only when told.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	run := func(stdin string, args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errOut}, "26.11.0")
		return out.String() + errOut.String(), code
	}
	if out, code := run("", "version"); code != 0 || strings.TrimSpace(out) != "26.11.0" {
		t.Fatalf("version: %d %q", code, out)
	}
	if out, code := run("", "quickstart", "--output", "k.toml", "--database", "sqlite:"+filepath.Join(dir, "users.db")); code != 0 {
		t.Fatalf("quickstart: %d %s", code, out)
	}
	if info, err := os.Stat("k.toml"); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("settings file: %v", err)
	}
	if out, code := run("", "quickstart", "--output", "k.toml"); code == 0 || !strings.Contains(out, "--force") {
		t.Fatalf("quickstart over an existing file: %d %s", code, out)
	}
	if out, code := run("", "--settings", "k.toml", "useradd", "alice", "--email", "alice@example.com"); code == 0 || !strings.Contains(out, "--password-stdin") {
		t.Fatalf("useradd without a terminal nor --password-stdin: %d %s", code, out)
	}
	if out, code := run("correct horse battery\n", "useradd", "alice", "--settings", "k.toml", "--password-stdin"); code != 0 {
		t.Fatalf("useradd: %d %s", code, out)
	}
	if out, code := run("another long password\n", "--settings", "k.toml", "useradd", "alice", "--password-stdin"); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("useradd twice: %d %s", code, out)
	}
	if out, code := run("x\n", "--settings", "k.toml", "useradd", "al ice", "--password-stdin"); code == 0 || !strings.Contains(out, "username") {
		t.Fatalf("useradd of a bad name: %d %s", code, out)
	}
	if out, code := run("a brand new password\n", "--settings", "k.toml", "passwd", "alice", "--password-stdin"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("passwd: %d %s", code, out)
	}
	if out, code := run("x\n", "--settings", "k.toml", "passwd", "nobody", "--password-stdin"); code == 0 {
		t.Fatalf("passwd of an unknown user: %s", out)
	}
	cfg, err := Load("k.toml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Service.Backend().Identify(context.Background(), "alice", "a brand new password"); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
	if out, code := run("", "frobnicate"); code != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, out)
	}
	if out, code := run("", "keygen", "--alg", "EdDSA"); code != 0 || !strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("keygen: %d %s", code, out)
	}
}

// With no settings file, Kisee runs on embedded defaults (SPEC 1 and 2):
// the sql backend on SQLite in the working directory, a key generated once
// and kept next to it (mode 0600), 127.0.0.1:8140, and root created with a
// random password shown once in the log.
func TestEmbeddedDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Host != "127.0.0.1" || cfg.Server.Port != 8140 || cfg.Backend != "sql" || !cfg.KeyGenerated {
		t.Fatalf("defaults: %s:%d %s generated=%v", cfg.Server.Host, cfg.Server.Port, cfg.Backend, cfg.KeyGenerated)
	}
	if info, err := os.Stat(DefaultKeyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	var logs bytes.Buffer
	a, err := New(context.Background(), cfg, Options{Logger: NewLogger(cfg.Log, false, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat("kisee.db"); err != nil {
		t.Fatalf("no SQLite database in the working directory: %v", err)
	}
	if n := strings.Count(logs.String(), "root password: "); n != 1 {
		t.Fatalf("root password logged %d times:\n%s", n, logs.String())
	}
	cfg2, err := Load("")
	if err != nil || cfg2.KeyGenerated || cfg2.Keys.Current.KeyID() != cfg.Keys.Current.KeyID() {
		t.Fatalf("second start: %v generated=%v", err, cfg2.KeyGenerated)
	}
	logs.Reset()
	a, err = New(context.Background(), cfg2, Options{Logger: NewLogger(cfg2.Log, false, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if strings.Contains(logs.String(), "root password: ") {
		t.Fatal("root recreated at the second start")
	}
}
