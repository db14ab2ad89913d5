package remote_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/kisee/backend/remote"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Against an upstream Kisee holding the conformance users.
func TestConformanceOverKisee(t *testing.T) {
	// The suite's subtests run at once, all from this process's address:
	// 40 parallel attempts on two accounts are more than the default
	// brute-force limit lets be in flight for one account and address.
	up := kiseetest.Start(t, "[rate_limit]\nmax_failures = 1000\n")
	backendtest.Run(t, func(t *testing.T) kisee.Backend {
		b, err := remote.New(remote.Options{URL: up.URL + "/jwt/", JWKSURL: up.URL + "/jwks.json"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// The chain of the original documentation: Kisee "internals" → Pasee →
// Kisee "externals" (remote) → Pasee names the user externals-internals-ada.
func TestChainStacksPrefixes(t *testing.T) {
	internals := kiseetest.Start(t, "[identity_backend]\nclass = \"test\"\n[[identity_backend.options.users]]\nusername = \"ada\"\npassword = \"ada password\"\nemail = \"ada@example.com\"\n")
	inner := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("internals", internals.URL))
	externals := kiseetest.Start(t, `[identity_backend]
class = "remote"
[identity_backend.options]
url = "`+inner.URL+`/tokens/"
idp = "internals"
jwks_url = "`+inner.URL+`/jwks.json"
claims = ["email"]
`)
	outer := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("externals", externals.URL))
	r := Do(t, "POST", outer.URL+"/tokens/?idp=externals", map[string]string{"login": "ada", "password": "ada password"}).WantStatus(t, 201)
	c, err := token.NewVerifier(token.NewStaticKeySet(outer.Key.Public()), token.WithTypes(token.TypeAccess)).Verify(context.Background(), r.JSON["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "externals-internals-ada" {
		t.Fatalf("sub = %q, want externals-internals-ada", c.Subject)
	}
	if email, _ := c.String("email"); email != "ada@example.com" {
		t.Fatalf("email lost along the chain: %v", c.Extra)
	}
	Do(t, "POST", outer.URL+"/tokens/?idp=externals", map[string]string{"login": "ada", "password": "wrong"}).WantProblem(t, 403, "Can not authenticate on externals")
}

func TestUpstreamFailures(t *testing.T) {
	up := kiseetest.Start(t, "")
	other, _ := token.GenerateKey(token.ES256)
	otherPEM, _ := other.Public().MarshalPEM()
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"tokens": ["x.y.z"]}`))
	}))
	defer garbage.Close()
	ctx := context.Background()
	for name, o := range map[string]remote.Options{
		"down":         {URL: "http://127.0.0.1:1/jwt/", JWKSURL: up.URL + "/jwks.json"},
		"slow":         {URL: slow.URL, JWKSURL: up.URL + "/jwks.json", Timeout: settings.Duration(200 * time.Millisecond)},
		"garbage":      {URL: garbage.URL, JWKSURL: up.URL + "/jwks.json"},
		"foreign keys": {URL: up.URL + "/jwt/", PublicKeys: []string{string(otherPEM)}},
	} {
		b, err := remote.New(o)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := b.Identify(ctx, "alice", backendtest.Users[0].Password); !errors.Is(err, kisee.ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: took %s", name, time.Since(start))
		}
	}
	for name, o := range map[string]remote.Options{
		"no keys":  {URL: up.URL + "/jwt/"},
		"bad url":  {URL: "ftp://x/", JWKSURL: "http://x/"},
		"bad PEM":  {URL: up.URL + "/jwt/", PublicKeys: []string{"nope"}},
		"relative": {URL: "/jwt/", JWKSURL: "http://x/"},
	} {
		if _, err := remote.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A Kisee on the remote backend passes its client's address upstream and
// the upstream's lockout back as a 429: the upstream counts the end
// client, not the Kisee in front of it, and a locked client is told so.
func TestRemotePassesClientAddressAndLockout(t *testing.T) {
	up := kiseetest.Start(t, "[rate_limit]\nmax_failures = 3\n")
	front := kiseetest.Start(t, `[identity_backend]
class = "remote"
[identity_backend.options]
url = "`+up.URL+`/jwt/"
jwks_url = "`+up.URL+`/jwks.json"
[rate_limit]
max_failures = 1000
`)
	wrong := `{"username":"alice","password":"wrong guess"}`
	right := `{"username":"alice","password":"` + backendtest.Users[0].Password + `"}`
	for i := range 3 {
		if s := PostFrom(t, "127.0.0.2", front.URL+"/jwt/", wrong); s != 403 {
			t.Fatalf("wrong password %d: %d, want 403", i+1, s)
		}
	}
	if s := PostFrom(t, "127.0.0.2", front.URL+"/jwt/", right); s != 429 {
		t.Errorf("after 3 failures (the upstream's limit) from 127.0.0.2: %d, want 429", s)
	}
	if s := PostFrom(t, "127.0.0.3", front.URL+"/jwt/", right); s != 201 {
		t.Errorf("alice from 127.0.0.3: %d, want 201 (the upstream counted the front Kisee, not its clients)", s)
	}
}
