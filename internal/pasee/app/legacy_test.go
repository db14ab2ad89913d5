package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/pkg/token"
)

const originalExample = "testdata/original-pasee-example.toml"

// Go Pasee starts on the original Pasee's example settings: every legacy
// key is mapped, and named once, with its line, in a warning saying what
// to write instead.
func TestOriginalExampleSettingsAreMapped(t *testing.T) {
	cfg, err := Load(originalExample)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.Current.Algorithm() != token.ES256K || !cfg.JWT.LegacyES256K {
		t.Errorf("algorithm: key %s, legacy_es256k %v; want ES256K labelled ES256", cfg.Keys.Current.Algorithm(), cfg.JWT.LegacyES256K)
	}
	if cfg.Storage.URL != "sqlite:pasee.db" {
		t.Errorf("storage url %q", cfg.Storage.URL)
	}
	p := cfg.IdentityProviders[0]
	if p.Protocol != "kisee" || !p.Registration || p.Endpoint != "http://127.0.0.1:8140/" {
		t.Errorf("provider %+v", p)
	}
	want := map[string]struct {
		line    int
		instead string
	}{
		"algorithm":                            {22, "[jwt] legacy_es256k = true"},
		"storage_backend":                      {24, `[storage] url = "sqlite:pasee.db"`},
		"identity_providers[0].implementation": {35, `protocol = "kisee"`},
		"identity_providers[0].title":          {38, "remove it"},
		"identity_providers[0].description":    {39, "remove it"},
		"identity_providers[0].capabilities":   {40, "registration = true"},
		"identity_providers[0].input_fields":   {48, "remove it"},
	}
	seen := map[string]bool{}
	for _, k := range cfg.Legacy {
		w, ok := want[k.Key]
		if !ok || seen[k.Key] {
			t.Errorf("unexpected or repeated warning %q", k.Warning(originalExample))
			continue
		}
		seen[k.Key] = true
		msg := k.Warning(originalExample)
		if k.Line != w.line || !strings.Contains(msg, w.instead) || !strings.HasPrefix(msg, originalExample+":") {
			t.Errorf("warning %q; want line %d and %q", msg, w.line, w.instead)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d legacy keys warned about, want %d: %v", len(seen), len(want), cfg.Legacy)
	}
	// The provider verifies the original Kisee's secp256k1 tokens labelled ES256.
	if _, err := cfg.Providers(); err != nil {
		t.Fatal(err)
	}
}

// `pasee settings upgrade` prints a file that loads to the same settings
// with no legacy key left.
func TestUpgradeSettings(t *testing.T) {
	out, legacy, err := UpgradeSettings(originalExample)
	if err != nil {
		t.Fatal(err)
	}
	if len(legacy) != 7 {
		t.Errorf("%d keys replaced, want 7", len(legacy))
	}
	for _, gone := range []string{"algorithm", "storage_backend", "implementation", "title", "capabilities", "input_fields"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("upgraded file still has %s:\n%s", gone, out)
		}
	}
	path := filepath.Join(t.TempDir(), "upgraded.toml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := Load(path)
	if err != nil {
		t.Fatalf("the upgraded file does not load: %v\n%s", err, out)
	}
	orig, _ := Load(originalExample)
	if len(up.Legacy) != 0 {
		t.Errorf("upgraded file still warns: %v", up.Legacy)
	}
	if up.Storage.URL != orig.Storage.URL || up.JWT.LegacyES256K != true || up.JWT.Iss != "pasee.meltylab.fr" ||
		up.Keys.Current.KeyID() != orig.Keys.Current.KeyID() || up.Hostname != orig.Hostname {
		t.Errorf("upgraded settings differ:\n%s", out)
	}
	p := up.IdentityProviders[0]
	if p.Protocol != "kisee" || !p.Registration || p.Endpoint != "http://127.0.0.1:8140/" || len(p.Settings["public_keys"].([]any)) != 1 {
		t.Errorf("upgraded provider %+v", p)
	}
	// Through the command line too.
	var stdout, stderr strings.Builder
	if code := Main(t.Context(), []string{"settings", "upgrade", originalExample}, Stdio{Out: &stdout, Err: &stderr}, "test"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "legacy_es256k = true") || strings.Count(stderr.String(), "setting of the original Pasee") != 7 {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

func legacyDoc(t *testing.T, extra string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(originalExample)
	if err != nil {
		t.Fatal(err)
	}
	src, err := settings.Parse("old.toml", append(data, []byte(extra)...), "")
	if err != nil {
		t.Fatal(err)
	}
	return FromSource(src)
}

// The PostgreSQL storage of the original becomes a postgres:// URL.
func TestLegacyPostgresStorage(t *testing.T) {
	doc := `algorithm = "ES256"
[storage_backend]
class = "pasee.storage_backend.pgsql_backend.pgsql.PostgresStorage"
[storage_backend.options]
user = "admin"
password = "s3cret"
database = "pasee"
host = "db.internal"
port = 5432
`
	key, _ := os.ReadFile(originalExample)
	head := string(key)[:strings.Index(string(key), "algorithm")]
	src, err := settings.Parse("old.toml", []byte(head+doc+"[[identity_providers]]\nname = \"kisee\"\nimplementation = \"pasee.identity_providers.kisee.KiseeIdentityProvider\"\nendpoint = \"http://127.0.0.1:8140/\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.URL != "postgres://admin:s3cret@db.internal:5432/pasee" {
		t.Errorf("url %q", cfg.Storage.URL)
	}
	for _, k := range cfg.Legacy {
		if strings.Contains(k.Warning("old.toml"), "s3cret") {
			t.Errorf("a warning shows the password: %s", k.Warning("old.toml"))
		}
	}
}

// Keys that were never valid stay errors with file and line, and legacy
// values with no equivalent are errors naming them.
func TestLegacySettingsErrors(t *testing.T) {
	cases := []struct {
		name, extra, key, msg string
	}{
		{"never-valid key in an input field", "\ncolour = \"red\"\n", "identity_providers[0].input_fields[1].colour", "unknown key"},
		{"never-valid provider key", "\n[[identity_providers]]\nname = \"x\"\nprotocol = \"kisee\"\nendpoint = \"http://x/\"\nicon = \"x.png\"\n", "identity_providers[1].icon", "unknown key"},
		{"twitter class", "\n[[identity_providers]]\nname = \"twitter\"\nimplementation = \"pasee.identity_providers.twitter.TwitterIdentityProvider\"\nprotocol = \"oauth1\"\n", "identity_providers[1].implementation", "OAuth 1"},
		{"unknown class", "\n[[identity_providers]]\nname = \"x\"\nimplementation = \"my.Provider\"\n", "identity_providers[1].implementation", "no equivalent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := legacyDoc(t, tc.extra)
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a settings error", err)
			}
			if se.File != "old.toml" || se.Line == 0 || se.Key != tc.key || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("err = %q, want old.toml:LINE: ...%s", err, tc.msg)
			}
		})
	}
	// A top-level unknown key, before any table.
	src, _ := settings.Parse("old.toml", []byte("colour = \"red\"\nalgorithm = \"ES256\"\n"), "")
	_, err := FromSource(src)
	var se *settings.Error
	if !errors.As(err, &se) || se.Key != "colour" || se.Line != 1 || se.Msg != "unknown key" {
		t.Fatalf("err = %v, want old.toml:1: colour: unknown key", err)
	}
	// An algorithm the key cannot sign is refused.
	data, _ := os.ReadFile(originalExample)
	src, _ = settings.Parse("old.toml", []byte(strings.Replace(string(data), `algorithm = "ES256"`, `algorithm = "RS256"`, 1)), "")
	if _, err := FromSource(src); !errors.As(err, &se) || se.Key != "algorithm" || se.Line != 22 {
		t.Fatalf("err = %v, want old.toml:22: algorithm ...", err)
	}
}

// `pasee import --from sqlite:FILE` through the command line: a dry run
// reports and writes nothing, the import writes, a rerun changes nothing.
func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "original.db")
	db, err := sqldb.OpenSQLite(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE users(name TEXT PRIMARY KEY, is_banned BOOLEAN DEFAULT FALSE)`,
		`CREATE TABLE groups(name TEXT PRIMARY KEY)`,
		`CREATE TABLE user_in_group(id INTEGER PRIMARY KEY, user TEXT, group_name TEXT)`,
		`INSERT INTO users (name, is_banned) VALUES ('kisee-John', 0), ('kisee-Eve', 1)`,
		`INSERT INTO groups (name) VALUES ('admin'), ('admin.developers')`,
		`INSERT INTO user_in_group ("user", group_name) VALUES ('kisee-John', 'admin.developers')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	settingsFile := filepath.Join(dir, "pasee.toml")
	doc := pemKey(t) + "[storage]\nurl = \"sqlite:" + filepath.Join(dir, "pasee.db") + "\"\n" + kiseeProvider
	if err := os.WriteFile(settingsFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errs strings.Builder
		if code := Main(t.Context(), append([]string{"--settings-file", settingsFile}, args...), Stdio{Out: &out, Err: &errs}, "test"); code != 0 {
			t.Fatalf("pasee %v: exit %d: %s", args, code, errs.String())
		}
		return out.String()
	}
	if out := run("import", "--from", "sqlite:"+orig, "--dry-run"); !strings.Contains(out, "would import: 4 changes") {
		t.Fatalf("dry run:\n%s", out)
	}
	if out := run("groups"); strings.TrimSpace(out) != "staff" {
		t.Fatalf("the dry run wrote groups:\n%s", out)
	}
	if out := run("import", "--from", "sqlite:"+orig); !strings.Contains(out, "imported: 4 changes") {
		t.Fatalf("import:\n%s", out)
	}
	if out := run("groups", "kisee-John"); strings.TrimSpace(out) != "admin.developers" {
		t.Fatalf("John's groups:\n%s", out)
	}
	if out := run("import", "--from", "sqlite:"+orig); !strings.Contains(out, "imported: 0 changes") {
		t.Fatalf("rerun:\n%s", out)
	}
}
