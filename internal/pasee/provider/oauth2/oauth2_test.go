package oauth2_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	"github.com/kisee-pasee/suite/internal/settings"
)

const callback = "http://127.0.0.1:8150/tokens/?idp=gh"

// explicit returns settings for the test server as a provider without preset.
func explicit(s *oauthtest.Server, subject string) oauth2.Options {
	return oauth2.Options{
		ClientOptions: oauth2.ClientOptions{AppID: s.ClientID(), AppSecret: s.ClientSecret(), Timeout: settings.Duration(2 * time.Second)},
		AuthURL:       s.AuthURL(), TokenURL: s.TokenURL(), UserinfoURL: s.UserinfoURL(), SubjectField: subject,
	}
}

// login runs the flow as Pasee does: authorization URL, the provider's
// answer, then the exchange with verifier.
func login(t *testing.T, p *oauth2.Provider, verifier string) (pasee.Identity, error) {
	t.Helper()
	ctx := context.Background()
	real := xoauth2.GenerateVerifier()
	to, err := p.AuthCodeURL(ctx, "the-state", xoauth2.S256ChallengeFromVerifier(real), "", callback)
	if err != nil {
		t.Fatal(err)
	}
	back := oauthtest.Authorize(t, to)
	if back.Get("state") != "the-state" || back.Get("code") == "" {
		t.Fatalf("provider answered %v", back)
	}
	if verifier == "" {
		verifier = real
	}
	return p.Exchange(ctx, back.Get("code"), verifier, "", callback)
}

func TestGitHubPresetTakesTheNumericIDNotTheLogin(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, RedirectURIs: []string{callback},
		User: oauthtest.User{ID: "9007199254740993", Login: "octocat", Email: "octo@example.com"}}) // > 2^53: must stay exact
	p, err := oauth2.New("gh", oauth2.Options{
		ClientOptions: oauth2.ClientOptions{ClientID: s.ClientID(), ClientSecret: s.ClientSecret(), Claims: []string{"login", "email"}},
		Preset:        "github",
		// An explicit URL wins over the preset's.
		AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), UserinfoURL: s.UserinfoURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := login(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "9007199254740993" {
		t.Fatalf("subject %q, want the numeric id", id.Subject)
	}
	if id.Claims["login"] != "octocat" || id.Claims["email"] != "octo@example.com" || len(id.Claims) != 2 {
		t.Fatalf("claims %v", id.Claims)
	}
	// GitHub preset: the secret goes in the form, PKCE S256 is sent.
	q := s.AuthorizeRequests()[0]
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("redirect_uri") != callback || q.Has("nonce") {
		t.Fatalf("authorization request %v", q)
	}
	form := s.TokenRequests()[0]
	if form.Get("client_secret") != s.ClientSecret() || form.Get("code_verifier") == "" || form.Get("redirect_uri") != callback {
		t.Fatal("token request lacks the form credentials, the verifier or redirect_uri")
	}
}

func TestTwitterPresetUsesBasicAuthPKCEAndDataID(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.Twitter, RedirectURIs: []string{callback}})
	p, err := oauth2.New("tw", oauth2.Options{
		ClientOptions: oauth2.ClientOptions{AppID: s.ClientID(), AppSecret: s.ClientSecret(), Claims: []string{"username"}},
		Preset:        "twitter", AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), UserinfoURL: s.UserinfoURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := login(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "2244994945" || id.Claims["username"] != "TwitterDev" {
		t.Fatalf("identity %+v", id)
	}
	if q := s.AuthorizeRequests()[0]; q.Get("scope") != "users.read tweet.read" {
		t.Fatalf("scope %q", q.Get("scope"))
	}
	if form := s.TokenRequests()[0]; form.Has("client_secret") {
		t.Fatal("twitter preset sent the secret in the form; Twitter wants HTTP Basic")
	}
}

func TestExplicitProviderAndDottedClaims(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.Twitter, RedirectURIs: []string{callback}})
	o := explicit(s, "data.id")
	o.Claims = []string{"data.name", "iss"} // "iss" is Pasee's: never kept
	p, err := oauth2.New("other", o)
	if err != nil {
		t.Fatal(err)
	}
	id, err := login(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "2244994945" || id.Claims["name"] != "Twitter Dev" || len(id.Claims) != 1 {
		t.Fatalf("identity %+v", id)
	}
}

func TestPKCEMismatchIsAClearRefusal(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, RedirectURIs: []string{callback}})
	p, err := oauth2.New("gh", explicit(s, "id"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := xoauth2.GenerateVerifier()
	_, err = login(t, p, wrong)
	if !errors.Is(err, pasee.ErrProviderRefused) || !strings.Contains(err.Error(), "PKCE") {
		t.Fatalf("error %v, want a refusal naming PKCE", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), s.ClientSecret()) {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

func TestExchangeFailures(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, RedirectURIs: []string{callback}})
	t.Run("wrong client secret", func(t *testing.T) {
		o := explicit(s, "id")
		o.AppSecret = "not-the-secret"
		p, _ := oauth2.New("gh", o)
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), "app_secret") || strings.Contains(err.Error(), "not-the-secret") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("code used twice", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "id"))
		v := xoauth2.GenerateVerifier()
		to, _ := p.AuthCodeURL(context.Background(), "st", xoauth2.S256ChallengeFromVerifier(v), "", callback)
		code := oauthtest.Authorize(t, to).Get("code")
		if _, err := p.Exchange(context.Background(), code, v, "", callback); err != nil {
			t.Fatal(err)
		}
		_, err := p.Exchange(context.Background(), code, v, "", callback)
		if !errors.Is(err, pasee.ErrProviderRefused) || !strings.Contains(err.Error(), "already used") || strings.Contains(err.Error(), code) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("subject field missing", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "data.id"))
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), `"data.id"`) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("user API failing", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "id"))
		s.SetAnswer("/userinfo", 503, `{"message": "down"}`)
		defer s.SetAnswer("/userinfo", 0, "")
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("user API not JSON", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "id"))
		s.SetAnswer("/userinfo", 200, `<html>`)
		defer s.SetAnswer("/userinfo", 0, "")
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("GitHub's own error codes, answered with 200", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "id"))
		s.SetAnswer("/token", 200, `{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}`)
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderRefused) || !strings.Contains(err.Error(), "incorrect or expired") {
			t.Fatalf("error %v", err)
		}
		s.SetAnswer("/token", 200, `{"error": "incorrect_client_credentials"}`)
		defer s.SetAnswer("/token", 0, "")
		if _, err := login(t, p, ""); !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), "app_secret") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("token endpoint failing", func(t *testing.T) {
		p, _ := oauth2.New("gh", explicit(s, "id"))
		s.SetAnswer("/token", 500, `{"error": "server_error"}`)
		defer s.SetAnswer("/token", 0, "")
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestProviderDownIsUnavailable(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, RedirectURIs: []string{callback}})
	p, _ := oauth2.New("gh", explicit(s, "id"))
	v := xoauth2.GenerateVerifier()
	to, _ := p.AuthCodeURL(context.Background(), "st", xoauth2.S256ChallengeFromVerifier(v), "", callback)
	code := oauthtest.Authorize(t, to).Get("code")
	s.Close()
	start := time.Now()
	_, err := p.Exchange(context.Background(), code, v, "", callback)
	if !errors.Is(err, pasee.ErrProviderUnavailable) || strings.Contains(err.Error(), code) {
		t.Fatalf("error %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("a provider that is down took longer than the timeout")
	}
}

func TestSlowProviderTimesOut(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer hang.Close()
	p, err := oauth2.New("slow", oauth2.Options{
		ClientOptions: oauth2.ClientOptions{AppID: "id", AppSecret: "s", Timeout: settings.Duration(300 * time.Millisecond)},
		AuthURL:       hang.URL + "/authorize", TokenURL: hang.URL + "/token", UserinfoURL: hang.URL + "/user", SubjectField: "id",
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.Exchange(context.Background(), "code", "verifier", "", callback)
	if !errors.Is(err, pasee.ErrProviderUnavailable) {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the exchange took %s despite a 300ms timeout", d)
	}
}

func TestSettingsErrorsNameTheKey(t *testing.T) {
	ok := oauth2.ClientOptions{AppID: "id", AppSecret: "secret"}
	cases := []struct {
		name string
		o    oauth2.Options
		key  string
	}{
		{"unknown preset", oauth2.Options{ClientOptions: ok, Preset: "facebook"}, "preset"},
		{"no endpoints", oauth2.Options{ClientOptions: ok}, "auth_url"},
		{"http token URL", oauth2.Options{ClientOptions: ok, Preset: "github", TokenURL: "http://github.example/token"}, "token_url"},
		{"http userinfo", oauth2.Options{ClientOptions: ok, Preset: "github", UserinfoURL: "http://10.0.0.1/user"}, "userinfo_url"},
		{"not absolute", oauth2.Options{ClientOptions: ok, Preset: "github", AuthURL: "/authorize"}, "auth_url"},
		{"no subject", oauth2.Options{ClientOptions: ok, AuthURL: "https://a.example/a", TokenURL: "https://a.example/t", UserinfoURL: "https://a.example/u"}, "subject_field"},
		{"bad subject path", oauth2.Options{ClientOptions: ok, Preset: "github", SubjectField: "data..id"}, "subject_field"},
		{"no client id", oauth2.Options{ClientOptions: oauth2.ClientOptions{AppSecret: "s"}, Preset: "github"}, "app_id"},
		{"no secret", oauth2.Options{ClientOptions: oauth2.ClientOptions{ClientID: "i"}, Preset: "github"}, "app_secret"},
		{"conflicting ids", oauth2.Options{ClientOptions: oauth2.ClientOptions{AppID: "a", ClientID: "b", AppSecret: "s"}, Preset: "github"}, "client_id"},
		{"bad auth style", oauth2.Options{ClientOptions: oauth2.ClientOptions{AppID: "a", AppSecret: "s", AuthStyle: "cookie"}, Preset: "github"}, "auth_style"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := oauth2.New("x", c.o)
			var se *oauth2.SettingError
			if !errors.As(err, &se) || se.Key != c.key {
				t.Fatalf("error %v, want a setting error on %s", err, c.key)
			}
			if strings.Contains(err.Error(), "secret\"") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
	// Synonyms and loopback exceptions are accepted.
	for _, u := range []string{"http://127.0.0.1:9/a", "http://127.3.4.5/a", "http://[::1]:80/a", "http://localhost/a", "https://idp.example/a"} {
		if _, err := oauth2.New("x", oauth2.Options{ClientOptions: oauth2.ClientOptions{ClientID: "i", ClientSecret: "s"}, Preset: "github", AuthURL: u}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://sso.example.com":        true,
		"http://127.0.0.1:5556/dex":      true,
		"http://localhost:8080":          true,
		"http://LOCALHOST:8080":          true,
		"http://[::1]/":                  true,
		"http://sso.example.com":         false,
		"http://localhost.evil.example/": false,
		"http://127.0.0.1.nip.io/":       false,
		"http://192.168.1.1/":            false,
		"https://user:pw@sso.example":    false,
		"ftp://sso.example.com":          false,
		"sso.example.com":                false,
	} {
		if got := oauth2.CheckURL("issuer", raw) == nil; got != want {
			t.Errorf("CheckURL(%q) accepted=%v, want %v", raw, got, want)
		}
	}
}

func TestAuthCodeURLCarriesCallbackStateAndChallenge(t *testing.T) {
	p, err := oauth2.New("gh", oauth2.Options{ClientOptions: oauth2.ClientOptions{AppID: "id", AppSecret: "s"}, Preset: "github"})
	if err != nil {
		t.Fatal(err)
	}
	to, _ := p.AuthCodeURL(context.Background(), "st&ate", "challenge43", "n", callback)
	u, _ := url.Parse(to)
	q := u.Query()
	if u.Host != "github.com" || q.Get("state") != "st&ate" || q.Get("redirect_uri") != callback || q.Get("code_challenge") != "challenge43" || q.Get("client_id") != "id" || q.Has("client_secret") {
		t.Fatalf("authorization URL %s", to)
	}
}
