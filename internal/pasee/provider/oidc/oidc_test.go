package oidc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oidc"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

const callback = "http://127.0.0.1:8150/tokens/?idp=corp"

func start(t *testing.T, o oauthtest.Options) (*oauthtest.Server, *oidc.Provider) {
	t.Helper()
	o.Shape = oauthtest.OIDC
	o.RedirectURIs = []string{callback}
	s := oauthtest.Start(t, o)
	p, err := oidc.New("corp", oidc.Options{
		ClientOptions: oauth2.ClientOptions{AppID: s.ClientID(), AppSecret: s.ClientSecret(), Claims: []string{"email", "name"}, Timeout: settings.Duration(2 * time.Second)},
		Issuer:        s.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// login runs the flow as Pasee does, with nonce; exchangeNonce is what
// Pasee expects back ("" for the nonce it sent).
func login(t *testing.T, p *oidc.Provider, exchangeNonce string) (pasee.Identity, error) {
	t.Helper()
	ctx := context.Background()
	v := xoauth2.GenerateVerifier()
	to, err := p.AuthCodeURL(ctx, "st", xoauth2.S256ChallengeFromVerifier(v), "nonce-123", callback)
	if err != nil {
		return pasee.Identity{}, err
	}
	back := oauthtest.Authorize(t, to)
	if back.Get("code") == "" {
		t.Fatalf("provider answered %v", back)
	}
	if exchangeNonce == "" {
		exchangeNonce = "nonce-123"
	}
	return p.Exchange(ctx, back.Get("code"), v, exchangeNonce, callback)
}

func TestLoginVerifiesTheIDTokenAndTakesItsSubject(t *testing.T) {
	s, p := start(t, oauthtest.Options{ClientAuth: oauthtest.AuthPost})
	id, err := login(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	// email from the id_token, name from userinfo (the id_token has none).
	if id.Subject != "248289761001" || id.Claims["email"] != "jane@example.com" || id.Claims["name"] != "Jane Doe" {
		t.Fatalf("identity %+v", id)
	}
	q := s.AuthorizeRequests()[0]
	if q.Get("nonce") != "nonce-123" || q.Get("scope") != "openid email profile" || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization request %v", q)
	}
	// Discovery said client_secret_post only: the secret went in the form.
	if s.TokenRequests()[0].Get("client_secret") != s.ClientSecret() {
		t.Fatal("the secret was not posted as discovery asked")
	}
}

func TestIDTokenChecks(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*oauthtest.Server)
		nonce  string
		accept bool
		want   string
	}{
		{name: "wrong audience", setup: func(s *oauthtest.Server) {
			s.SetIDTokenHook(func(c *token.Claims) { c.Audience = []string{"another-client"} })
		}, want: "wrong audience"},
		{name: "bad signature", setup: func(s *oauthtest.Server) {
			s.SetIDTokenTransform(func(raw string) string {
				i := strings.LastIndexByte(raw, '.') + 1
				c := byte('A')
				if raw[i] == 'A' {
					c = 'B'
				}
				return raw[:i] + string(c) + raw[i+1:]
			})
		}, want: "invalid signature"},
		{name: "signed by a key the provider does not publish", setup: func(s *oauthtest.Server) {
			other, _ := token.GenerateKey(token.ES256)
			s.SetSigningKey(other)
		}, want: "does not verify"},
		{name: "wrong issuer", setup: func(s *oauthtest.Server) {
			s.SetIDTokenHook(func(c *token.Claims) { c.Issuer = "https://evil.example" })
		}, want: "wrong issuer"},
		{name: "nonce mismatch", nonce: "another-login", want: "nonce"},
		{name: "no nonce", setup: func(s *oauthtest.Server) {
			s.SetIDTokenHook(func(c *token.Claims) { delete(c.Extra, "nonce") })
		}, want: "nonce"},
		{name: "authorized party is another client", setup: func(s *oauthtest.Server) {
			s.SetIDTokenHook(func(c *token.Claims) { c.Set("azp", "another-client") })
		}, want: "azp"},
		{name: "expired", setup: func(s *oauthtest.Server) {
			s.SetClock(func() time.Time { return time.Now().Add(-10 * time.Minute) })
		}, want: "expired"},
		{name: "provider clock 20 s ahead, within the leeway", setup: func(s *oauthtest.Server) {
			s.SetClock(func() time.Time { return time.Now().Add(20 * time.Second) })
		}, accept: true},
		{name: "provider clock 5 min behind, exp still within the leeway", setup: func(s *oauthtest.Server) {
			s.SetClock(func() time.Time { return time.Now().Add(-5*time.Minute - 20*time.Second) })
		}, accept: true},
		{name: "provider clock 2 min ahead, beyond the leeway", setup: func(s *oauthtest.Server) {
			s.SetClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
		}, want: "not yet valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, p := start(t, oauthtest.Options{})
			if c.setup != nil {
				c.setup(s)
			}
			id, err := login(t, p, c.nonce)
			if c.accept {
				if err != nil || id.Subject == "" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want a bad answer about %q", err, c.want)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	t.Run("issuer mismatch", func(t *testing.T) {
		s, p := start(t, oauthtest.Options{})
		s.SetAnswer("/.well-known/openid-configuration", 200, `{"issuer": "https://other.example", "authorization_endpoint": "`+s.AuthURL()+`", "token_endpoint": "`+s.TokenURL()+`", "jwks_uri": "`+s.JWKSURL()+`"}`)
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("plain http endpoint", func(t *testing.T) {
		s, p := start(t, oauthtest.Options{})
		s.SetAnswer("/.well-known/openid-configuration", 200, `{"issuer": "`+s.URL+`", "authorization_endpoint": "`+s.AuthURL()+`", "token_endpoint": "http://sso.example/token", "jwks_uri": "`+s.JWKSURL()+`"}`)
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), "token_endpoint") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("provider down", func(t *testing.T) {
		s, p := start(t, oauthtest.Options{})
		s.Close()
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("keys unreachable", func(t *testing.T) {
		s, p := start(t, oauthtest.Options{})
		s.SetAnswer("/jwks.json", 503, `{}`)
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("no id_token", func(t *testing.T) {
		s, p := start(t, oauthtest.Options{})
		s.SetIDTokenTransform(func(string) string { return "" })
		_, err := login(t, p, "")
		if !errors.Is(err, pasee.ErrProviderBadAnswer) || !strings.Contains(err.Error(), "id_token") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestSettings(t *testing.T) {
	creds := oauth2.ClientOptions{AppID: "pasee", AppSecret: "s"}
	for _, c := range []struct {
		o   oidc.Options
		key string
	}{
		{oidc.Options{ClientOptions: creds}, "issuer"},
		{oidc.Options{ClientOptions: creds, Issuer: "http://sso.example.com"}, "issuer"},
		{oidc.Options{ClientOptions: oauth2.ClientOptions{AppSecret: "s"}, Issuer: "https://sso.example.com"}, "app_id"},
		{oidc.Options{ClientOptions: oauth2.ClientOptions{AppID: "p", AppSecret: "s", Claims: []string{"sub"}}, Issuer: "https://sso.example.com"}, "claims[0]"},
	} {
		_, err := oidc.New("corp", c.o)
		var se *oauth2.SettingError
		if !errors.As(err, &se) || se.Key != c.key {
			t.Errorf("%+v: error %v, want one on %s", c.o, err, c.key)
		}
	}
	p, err := oidc.New("corp", oidc.Options{ClientOptions: oauth2.ClientOptions{ClientID: "p", ClientSecret: "s", Scopes: []string{"email"}}, Issuer: "http://127.0.0.1:5556/dex"})
	if err != nil {
		t.Fatalf("loopback http issuer refused: %v", err)
	}
	if p.Protocol() != "oidc" || p.Name() != "corp" {
		t.Fatal("name or protocol")
	}
}
