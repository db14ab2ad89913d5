package flow_test

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// The pasee command builds oauth2 and oidc providers and the flow from its
// settings file alone.
func TestPaseeServesTheFlowFromItsSettings(t *testing.T) {
	gh := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})
	corp := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.OIDC})
	doc := fmt.Sprintf(`
[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
preset = "github"
app_id = %q
app_secret = %q
auth_url = %q
token_url = %q
userinfo_url = %q
claims = ["login"]

[[identity_providers]]
name = "corp"
protocol = "oidc"
[identity_providers.settings]
issuer = %q
client_id = %q
client_secret = %q
claims = ["email"]

[cors]
allowed_origins = [%q]
allowed_redirect_uris = [%q]
`, gh.ClientID(), gh.ClientSecret(), gh.AuthURL(), gh.TokenURL(), gh.UserinfoURL(), corp.URL, corp.ClientID(), corp.ClientSecret(), appOrigin, appCallback)
	p := paseetest.Start(t, paseetest.SQLite, doc)
	gh.SetRedirectURIs(p.URL + "/tokens/?idp=github")
	corp.SetRedirectURIs(p.URL + "/tokens/?idp=corp")

	list := Do(t, "GET", p.URL+"/tokens/", nil).WantStatus(t, 200)
	if !strings.Contains(string(list.Body), `"protocol":"oidc"`) || !strings.Contains(string(list.Body), `"method":"GET"`) {
		t.Fatalf("GET /tokens/ does not describe the redirect providers: %s", list.Body)
	}
	inst := &instance{URL: p.URL, Public: p.URL, Key: p.Key}
	for idp, want := range map[string]string{"github": "github-583231", "corp": "corp-248289761001"} {
		back := inst.login(t, idp, "s")
		r := inst.redeem(t, back.Get("code")).WantStatus(t, 201)
		if sub := inst.access(t, r.JSON["access_token"].(string)).Subject; sub != want {
			t.Fatalf("%s: subject %q, want %q", idp, sub, want)
		}
	}
	get(t, p.URL+"/tokens/?idp=github&redirect_uri="+url.QueryEscape("https://evil.example/")).wantProblem(t, 400, "Redirect URI not allowed")
}

func TestProviderSettingsErrorsNameFileKeyAndLine(t *testing.T) {
	key, _ := token.GenerateKey(token.ES256)
	pemKey, _ := key.MarshalPEM()
	head := "private_key = '''" + string(pemKey) + "'''\n"
	for _, c := range []struct {
		settings, key string
	}{
		{`preset = "github"
app_id = "id"`, "identity_providers[0].settings.app_secret"},
		{`preset = "github"
app_id = "id"
app_secret = "s"
token_url = "http://github.example/token"`, "identity_providers[0].settings.token_url"},
		{`preset = "myspace"
app_id = "id"
app_secret = "s"`, "identity_providers[0].settings.preset"},
		{`issuer = "http://sso.example.com"
app_id = "id"
app_secret = "s"`, "identity_providers[0].settings.issuer"},
		{`preset = "github"
app_id = "id"
app_secret = "s"
appsecret = "typo"`, "identity_providers[0].settings.appsecret"},
	} {
		protocol := "oauth2"
		if strings.Contains(c.settings, "issuer") {
			protocol = "oidc"
		}
		doc := head + fmt.Sprintf("[[identity_providers]]\nname = \"x\"\nprotocol = %q\n[identity_providers.settings]\n%s\n", protocol, c.settings)
		src, err := settings.Parse("pasee.toml", []byte(doc), "")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := app.FromSource(src)
		if err == nil {
			_, err = cfg.Providers()
		}
		if err == nil || !strings.Contains(err.Error(), "pasee.toml:") || !strings.Contains(err.Error(), c.key) {
			t.Errorf("settings\n%s\ngave %v, want an error on %s", c.settings, err, c.key)
		}
		if err != nil && strings.Contains(err.Error(), `"s"`) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	// oauth2 and oidc providers take no endpoint and no registrations.
	for _, extra := range []string{`endpoint = "https://github.com/"`, `registration = true`} {
		doc := head + "[[identity_providers]]\nname = \"gh\"\nprotocol = \"oauth2\"\n" + extra + "\n[identity_providers.settings]\npreset = \"github\"\napp_id = \"i\"\napp_secret = \"s\"\n"
		src, _ := settings.Parse("pasee.toml", []byte(doc), "")
		if _, err := app.FromSource(src); err == nil {
			t.Errorf("%s accepted on an oauth2 provider", extra)
		}
	}
}

// The client secret may come from a file, as every secret.
func TestClientSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/secret"
	if err := os.WriteFile(path, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, ClientSecret: "from-the-file"})
	doc := fmt.Sprintf("[[identity_providers]]\nname = \"github\"\nprotocol = \"oauth2\"\n[identity_providers.settings]\npreset = \"github\"\napp_id = %q\napp_secret_file = %q\nauth_url = %q\ntoken_url = %q\nuserinfo_url = %q\n[cors]\nallowed_redirect_uris = [%q]\n",
		gh.ClientID(), path, gh.AuthURL(), gh.TokenURL(), gh.UserinfoURL(), appCallback)
	p := paseetest.Start(t, paseetest.SQLite, doc)
	gh.SetRedirectURIs(p.URL + "/tokens/?idp=github")
	inst := &instance{URL: p.URL, Public: p.URL, Key: p.Key}
	inst.redeem(t, inst.login(t, "github", "").Get("code")).WantStatus(t, 201)
	if strings.Contains(p.Logs(), "from-the-file") {
		t.Fatal("the secret is in the logs")
	}
}
