package pasee_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

// An original (Python) Pasee as upstream, behind this Pasee configured
// with [jwt] legacy_es256k = true: its access tokens (secp256k1 labelled
// ES256, typed "JWT", sub already prefixed) are accepted, its refresh
// tokens are not.
func TestOriginalPaseeUpstream(t *testing.T) {
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.NewPublicKey(key.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := pub.MarshalPEM()
	pair := func(sub string) (string, string) {
		c := map[string]any{"iss": "example.com", "sub": sub, "groups": []string{"staff"}, "exp": time.Now().Add(time.Hour).Unix(), "jti": rand.Text()[:22]}
		access := paseetest.OriginalToken(key, c)
		delete(c, "groups")
		c["refresh_token"] = true
		return access, paseetest.OriginalToken(key, c)
	}
	var upstream *httptest.Server
	upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			w.Header().Set("Content-Type", "application/json-home")
			_ = json.NewEncoder(w).Encode(map[string]any{"api": map[string]any{"title": "Identification Manager"}, "resources": map[string]any{
				"tokens":     map[string]any{"href": upstream.URL + "/tokens/", "hints": map[string]any{"allow": []string{"GET", "POST"}}},
				"public-key": map[string]any{"href": upstream.URL + "/public-key/"},
				"group":      map[string]any{"hrefTemplate": upstream.URL + "/groups/{group_uid}/"},
			}})
		case r.Method == "POST" && r.URL.Path == "/tokens/" && r.URL.Query().Get("idp") == "kisee":
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body["login"] != "ada" || body["password"] != "ada's password" {
				http.Error(w, "Can not authenticate on kisee", http.StatusForbidden)
				return
			}
			access, refresh := pair("kisee-ada")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "refresh_token": refresh})
		default:
			http.NotFound(w, r)
		}
	}))
	defer upstream.Close()
	doc := "[jwt]\nlegacy_es256k = true\n[[identity_providers]]\nname = \"old\"\nprotocol = \"pasee\"\nendpoint = \"" + upstream.URL + "/\"\n" +
		"[identity_providers.settings]\nidp = \"kisee\"\npublic_keys = ['''" + string(pem) + "''']\n"
	s := paseetest.Start(t, paseetest.SQLite, doc)
	u := s.URL + "/tokens/?idp=old"

	r := Do(t, "POST", u, map[string]string{"login": "ada", "password": "ada's password"}).WantStatus(t, http.StatusCreated)
	v := token.NewVerifier(token.NewStaticKeySet(s.Key.Public()), token.WithTypes(token.TypeAccess))
	c, err := v.Verify(t.Context(), r.JSON["access_token"].(string))
	if err != nil || c.Subject != "old-kisee-ada" {
		t.Fatalf("login: %+v, %v", c, err)
	}
	access, refresh := pair("kisee-ada")
	Do(t, "POST", u, nil, Bearer(access)...).WantStatus(t, http.StatusCreated)
	Do(t, "POST", u, nil, Bearer(refresh)...).WantProblem(t, http.StatusUnauthorized, "Invalid token")
}
