package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

const client = "[[clients]]\nid = \"grafana\"\nsecret = \"0123456789abcdef0123\"\nredirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]\n"

func rsaPEM(t *testing.T) string {
	t.Helper()
	k, err := token.GenerateKey(token.RS256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := k.MarshalPEM()
	return string(pem)
}

// Each mistake in [[clients]] and [oidc] stops start-up with the file,
// the key and its line.
func TestClientSettingsErrors(t *testing.T) {
	k := pemKey(t) + kiseeProvider
	ecPEM := strings.TrimSuffix(strings.TrimPrefix(pemKey(t), "private_key = '''"), "'''\n")
	cases := []struct{ name, doc, key, msg string }{
		{"bad id", k + strings.Replace(client, `"grafana"`, `"graf ana"`, 1), "clients[0].id", "client ids"},
		{"no id", k + "[[clients]]\nredirect_uris = [\"https://a.example/cb\"]\n", "clients[0].id", "client ids"},
		{"duplicate id", k + client + client, "clients[1].id", "two clients"},
		{"short secret", k + strings.Replace(client, "0123456789abcdef0123", "short", 1), "clients[0].secret", "at least"},
		{"no redirect uri", k + "[[clients]]\nid = \"a\"\n", "clients[0].redirect_uris", "missing required value"},
		{"redirect uri with fragment", k + "[[clients]]\nid = \"a\"\nredirect_uris = [\"https://a.example/cb#x\"]\n", "clients[0].redirect_uris[0]", "without fragment"},
		{"relative redirect uri", k + "[[clients]]\nid = \"a\"\nredirect_uris = [\"/cb\"]\n", "clients[0].redirect_uris[0]", "absolute"},
		{"redirect uri with userinfo", k + "[[clients]]\nid = \"a\"\nredirect_uris = [\"https://u:p@a.example/cb\"]\n", "clients[0].redirect_uris[0]", "user name"},
		{"javascript redirect uri", k + "[[clients]]\nid = \"a\"\nredirect_uris = [\"javascript:alert(1)\"]\n", "clients[0].redirect_uris[0]", "refused"},
		{"logout uri with fragment", k + client + "post_logout_redirect_uris = [\"https://a.example/#x\"]\n", "clients[0].post_logout_redirect_uris[0]", "without fragment"},
		{"unknown alg", k + client + "id_token_signed_response_alg = \"HS256\"\n", "clients[0].id_token_signed_response_alg", "not supported"},
		{"RS256 without RSA key", k + client + "id_token_signed_response_alg = \"RS256\"\n", "clients[0].id_token_signed_response_alg", "RSA key"},
		{"typo in a client", k + client + "redirect_uri = \"https://a.example/cb\"\n", "clients[0].redirect_uri", "unknown key"},
		{"issuer not a URL", "[jwt]\niss = \"pasee.example.com\"\n" + k + client, "jwt.iss", "must be an http(s) URL"},
		{"issuer elsewhere", "hostname = \"https://auth.example.com\"\n[jwt]\niss = \"https://other.example.com\"\n" + k + client, "jwt.iss", "hostname"},
		{"RSA key not RSA", k + client + "[oidc]\nrsa_private_key = '''" + ecPEM + "'''\n", "oidc.rsa_private_key", "RSA key"},
		{"RSA key without clients", k + "[oidc]\nrsa_private_key = '''" + rsaPEM(t) + "'''\n", "oidc.rsa_private_key", "no [[clients]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := settings.Parse("pasee.toml", []byte(tc.doc), "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromSource(src)
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

func TestClientSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("a-secret-from-a-file-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := pemKey(t) + kiseeProvider + "[[clients]]\nid = \"k8s\"\nsecret_file = \"" + secretFile + "\"\nredirect_uris = [\"http://localhost:8000\"]\nid_token_signed_response_alg = \"RS256\"\n" +
		"[[clients]]\nid = \"spa\"\nname = \"The SPA\"\nredirect_uris = [\"https://spa.example.com/cb\", \"com.example.app:/callback\"]\n" +
		"[oidc]\nrsa_private_key = '''" + rsaPEM(t) + "'''\n"
	src, err := settings.Parse("pasee.toml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	cs := cfg.OpenIDClients()
	if len(cs) != 2 || cs[0].Secret != "a-secret-from-a-file-0123" || !cs[0].RS256 || cs[0].Name != "k8s" || !cs[1].Public() || cs[1].Name != "The SPA" {
		t.Fatalf("clients %+v", cs)
	}
	if cfg.RSAKey == nil || len(cfg.Keys.Next) != 1 || !cfg.Keys.Next[0].Equal(cfg.RSAKey.Public()) {
		t.Fatal("the RSA key is not loaded and published")
	}
	if iss, err := cfg.Issuer(); err != nil || iss != cfg.Hostname {
		t.Fatalf("issuer %q, %v", iss, err)
	}
}

// An issuer below hostname serves discovery under its own path, and its
// tokens carry it.
func TestIssuerWithPath(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := "http://" + ln.Addr().String()
	doc := "hostname = \"" + host + "\"\n" + pemKey(t) + "[jwt]\niss = \"" + host + "/tenant\"\n[storage]\nurl = \"sqlite:" + filepath.Join(t.TempDir(), "p.db") + "\"\n" +
		kiseeProvider + client
	src, err := settings.Parse("pasee.toml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{Version: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := &http.Server{Handler: a.Server, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	resp, err := http.Get(host + "/tenant/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	if d["issuer"] != host+"/tenant" || d["token_endpoint"] != host+"/oidc/token" {
		t.Fatalf("discovery %v", d)
	}
}
