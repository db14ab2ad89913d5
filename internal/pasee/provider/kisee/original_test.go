package kisee_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pasee/provider/kisee"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := k.MarshalPEM()
	return string(pem)
}

// originalKisee stands in for the original (Python) Kisee 21.9.0 as Pasee
// sees it: its JSON-Home, POST /jwt/ answering {"tokens": [...]}, tokens
// signed with secp256k1 but labelled ES256, and GET /jwt/{jti} answering
// 500 (not implemented in the original).
type originalKisee struct {
	*httptest.Server
	key       *secp256k1.PrivateKey
	publicPEM string
	// statusAsked counts GET /jwt/{jti}; statusAnswer is what it answers
	// (500 unless changed), advertise adds token_status to the JSON-Home.
	statusAsked  atomic.Int32
	statusAnswer atomic.Int32
	advertise    bool
	homeDown     atomic.Bool
}

func newOriginalKisee(t *testing.T, advertise bool) *originalKisee {
	t.Helper()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.NewPublicKey(key.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := pub.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	k := &originalKisee{key: key, publicPEM: string(pem), advertise: advertise}
	k.statusAnswer.Store(http.StatusInternalServerError)
	k.Server = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.Close)
	return k
}

func (k *originalKisee) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "GET" && r.URL.Path == "/":
		if k.homeDown.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		coreapi := map[string]any{"application/coreapi+json": map[string]any{}}
		resources := map[string]any{
			"jwt":                 map[string]any{"href": k.URL + "/jwt/", "hints": map[string]any{"allow": []string{"GET", "POST"}, "formats": coreapi}},
			"users":               map[string]any{"href": k.URL + "/users/", "hints": map[string]any{"allow": []string{"GET", "POST", "PATCH"}, "formats": coreapi}},
			"password_recoveries": map[string]any{"href": k.URL + "/password_recoveries/", "hints": map[string]any{"allow": []string{"GET", "POST"}, "formats": coreapi}},
		}
		if k.advertise {
			resources["token_status"] = map[string]any{"href-template": k.URL + "/jwt/{jti}", "hints": map[string]any{"allow": []string{"GET"}}}
		}
		w.Header().Set("Content-Type", "application/json-home")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"api":       map[string]any{"title": "Identification Provider", "links": map[string]string{"author": "mailto:julien@palard.fr"}},
			"resources": resources,
		})
	case r.Method == "POST" && r.URL.Path == "/jwt/":
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		login := body["username"]
		if login == "" {
			login = body["login"]
		}
		if login != "John" || body["password"] != "John's password" {
			http.Error(w, "Failed identification for kisee.", http.StatusForbidden)
			return
		}
		jti := rand.Text()[:22]
		tok := k.sign(map[string]any{"iss": "example.com", "sub": "John", "exp": time.Now().Add(time.Hour).Unix(), "jti": jti})
		w.Header().Set("Location", "/jwt/"+jti)
		w.Header().Set("Content-Type", "application/vnd.coreapi+json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"_type": "document", "_meta": map[string]string{"url": "/jwt/", "title": "JSON Web Tokens"}, "tokens": []string{tok}})
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/jwt/") && len(r.URL.Path) > len("/jwt/"):
		k.statusAsked.Add(1)
		status := int(k.statusAnswer.Load())
		if status == http.StatusOK {
			_ = json.NewEncoder(w).Encode(map[string]any{"revoked": false})
			return
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, `{"revoked": true}`)
	default:
		http.NotFound(w, r)
	}
}

func (k *originalKisee) sign(claims map[string]any) string {
	return paseetest.OriginalToken(k.key, claims)
}

func signWith(key *secp256k1.PrivateKey, claims map[string]any) string {
	return paseetest.OriginalToken(key, claims)
}

func (k *originalKisee) token(sub string, exp time.Time) string {
	return k.sign(map[string]any{"iss": "example.com", "sub": sub, "exp": exp.Unix(), "jti": rand.Text()[:22]})
}

// pasee starts a Pasee in front of k with jwtSection as its [jwt] table
// and providerExtra in the provider's settings.
func pasee(t *testing.T, k *originalKisee, jwtSection, providerExtra string) *paseetest.Server {
	t.Helper()
	doc := jwtSection + "\n[[identity_providers]]\nname = \"kisee\"\nprotocol = \"kisee\"\nendpoint = \"" + k.URL + "/\"\n" +
		"[identity_providers.settings]\npublic_keys = ['''" + k.publicPEM + "''']\n" + providerExtra + "\n"
	return paseetest.Start(t, paseetest.SQLite, doc)
}

func subject(t *testing.T, s *paseetest.Server, r *Response) string {
	t.Helper()
	raw, _ := r.JSON["access_token"].(string)
	v := token.NewVerifier(token.NewStaticKeySet(s.Key.Public()), token.WithTypes(token.TypeAccess))
	c, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	return c.Subject
}

func wantInvalidToken(t *testing.T, r *Response) {
	t.Helper()
	r.WantProblem(t, http.StatusUnauthorized, "Invalid token")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
}

// Pasee in front of an original Kisee, configured with [jwt]
// legacy_es256k = true and nothing else: logins through the login route
// and through the Bearer route work, although the original answers the
// revocation route with 500; bad tokens get 401.
func TestOriginalKiseeEndToEnd(t *testing.T) {
	k := newOriginalKisee(t, false)
	s := pasee(t, k, "[jwt]\nlegacy_es256k = true", "")
	u := s.URL + "/tokens/?idp=kisee"

	r := Do(t, "POST", u, map[string]string{"login": "John", "password": "John's password"}).WantStatus(t, http.StatusCreated)
	if sub := subject(t, s, r); sub != "kisee-John" {
		t.Fatalf("login route: sub %q", sub)
	}
	Do(t, "POST", u, map[string]string{"login": "John", "password": "wrong"}).WantProblem(t, http.StatusForbidden, "Can not authenticate on kisee")

	r = Do(t, "POST", u, nil, Bearer(k.token("John", time.Now().Add(time.Hour)))...).WantStatus(t, http.StatusCreated)
	if sub := subject(t, s, r); sub != "kisee-John" {
		t.Fatalf("Bearer route: sub %q", sub)
	}
	if n := k.statusAsked.Load(); n != 0 {
		t.Fatalf("Pasee asked the original Kisee's GET /jwt/{jti} %d times; it advertises no such route", n)
	}

	// Expired, or signed by a key Pasee does not know: 401.
	wantInvalidToken(t, Do(t, "POST", u, nil, Bearer(k.token("John", time.Now().Add(-time.Hour)))...))
	other, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := signWith(other, map[string]any{"iss": "example.com", "sub": "John", "exp": time.Now().Add(time.Hour).Unix(), "jti": "x"})
	wantInvalidToken(t, Do(t, "POST", u, nil, Bearer(forged)...))
	// A token without jti is refused only where revocation is checked.
	noJTI := k.sign(map[string]any{"iss": "example.com", "sub": "John", "exp": time.Now().Add(time.Hour).Unix()})
	Do(t, "POST", u, nil, Bearer(noJTI)...).WantStatus(t, http.StatusCreated)
}

// Without the flag, the original's tokens do not verify: the flag is what
// makes the side-by-side run work, and a per-provider value overrides it.
func TestLegacyFlagReachesProviders(t *testing.T) {
	k := newOriginalKisee(t, false)
	login := map[string]string{"login": "John", "password": "John's password"}
	s := pasee(t, k, "", "")
	Do(t, "POST", s.URL+"/tokens/?idp=kisee", login).WantStatus(t, http.StatusBadGateway)
	wantInvalidToken(t, Do(t, "POST", s.URL+"/tokens/?idp=kisee", nil, Bearer(k.token("John", time.Now().Add(time.Hour)))...))

	s = pasee(t, k, "", "legacy_es256k = true")
	Do(t, "POST", s.URL+"/tokens/?idp=kisee", login).WantStatus(t, http.StatusCreated)

	s = pasee(t, k, "[jwt]\nlegacy_es256k = true", "legacy_es256k = false")
	Do(t, "POST", s.URL+"/tokens/?idp=kisee", login).WantStatus(t, http.StatusBadGateway)
}

// check_revocation: "auto" asks only Kisees that advertise token_status
// and fails closed when they cannot answer; true always asks and refuses
// when unanswered; false never asks.
func TestCheckRevocation(t *testing.T) {
	bearer := func(k *originalKisee) []string { return Bearer(k.token("John", time.Now().Add(time.Hour))) }

	t.Run("true asks the original, which cannot answer", func(t *testing.T) {
		k := newOriginalKisee(t, false)
		s := pasee(t, k, "[jwt]\nlegacy_es256k = true", "check_revocation = true")
		Do(t, "POST", s.URL+"/tokens/?idp=kisee", nil, bearer(k)...).WantProblem(t, http.StatusServiceUnavailable, "kisee not responding")
		if k.statusAsked.Load() != 1 {
			t.Fatalf("asked %d times", k.statusAsked.Load())
		}
	})
	t.Run("false never asks", func(t *testing.T) {
		k := newOriginalKisee(t, true)
		s := pasee(t, k, "[jwt]\nlegacy_es256k = true", "check_revocation = false")
		Do(t, "POST", s.URL+"/tokens/?idp=kisee", nil, bearer(k)...).WantStatus(t, http.StatusCreated)
		if k.statusAsked.Load() != 0 {
			t.Fatalf("asked %d times", k.statusAsked.Load())
		}
	})
	t.Run("auto asks a Kisee that advertises the route", func(t *testing.T) {
		k := newOriginalKisee(t, true)
		s := pasee(t, k, "[jwt]\nlegacy_es256k = true", `check_revocation = "auto"`)
		u := s.URL + "/tokens/?idp=kisee"
		k.statusAnswer.Store(http.StatusOK)
		Do(t, "POST", u, nil, bearer(k)...).WantStatus(t, http.StatusCreated)
		k.statusAnswer.Store(http.StatusNotFound) // revoked or unknown
		wantInvalidToken(t, Do(t, "POST", u, nil, bearer(k)...))
		k.statusAnswer.Store(http.StatusInternalServerError) // a failing Kisee is no open door
		Do(t, "POST", u, nil, bearer(k)...).WantProblem(t, http.StatusServiceUnavailable, "kisee not responding")
		noJTI := k.sign(map[string]any{"iss": "example.com", "sub": "John", "exp": time.Now().Add(time.Hour).Unix()})
		wantInvalidToken(t, Do(t, "POST", u, nil, Bearer(noJTI)...))
		if k.statusAsked.Load() != 3 {
			t.Fatalf("asked %d times, want 3", k.statusAsked.Load())
		}
	})
	t.Run("auto fails closed when the JSON-Home cannot be read", func(t *testing.T) {
		k := newOriginalKisee(t, true)
		k.homeDown.Store(true)
		s := pasee(t, k, "[jwt]\nlegacy_es256k = true", "")
		Do(t, "POST", s.URL+"/tokens/?idp=kisee", nil, bearer(k)...).WantProblem(t, http.StatusServiceUnavailable, "kisee not responding")
	})
	t.Run("a bad value is a settings error", func(t *testing.T) {
		for _, v := range []any{"sometimes", int64(3)} {
			if _, err := kisee.ParseRevocation(v); err == nil || !strings.Contains(err.Error(), "check_revocation") {
				t.Errorf("check_revocation = %v: %v", v, err)
			}
		}
		k := newOriginalKisee(t, false)
		src, err := settings.Parse("pasee.toml", []byte("private_key = \"\"\""+testKeyPEM(t)+"\"\"\"\n[[identity_providers]]\nname = \"kisee\"\nprotocol = \"kisee\"\nendpoint = \""+k.URL+"/\"\n[identity_providers.settings]\ncheck_revocation = \"maybe\"\n"), "")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := app.FromSource(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Providers(); err == nil || !strings.HasPrefix(err.Error(), "pasee.toml:12: identity_providers[0].settings.check_revocation: ") {
			t.Errorf("err = %v, want pasee.toml:12: identity_providers[0].settings.check_revocation: ...", err)
		}
	})
}
