package remote_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

// A Kisee whose remote backend is an original (Python) Kisee, which signs
// with secp256k1 and labels its tokens ES256: Kisee's own [jwt]
// legacy_es256k is all the operator sets, as for Pasee's providers; the
// backend's legacy_es256k = false still overrides it.
func TestRemoteOverAnOriginalKiseeFollowsJWTLegacy(t *testing.T) {
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
	original := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Username, Password string }
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil || body.Password != "ada password" {
			http.Error(w, `{"title":"Failed identification"}`, http.StatusForbidden)
			return
		}
		tok := paseetest.OriginalToken(key, map[string]any{
			"iss": "original.example", "sub": body.Username, "jti": "j1", "exp": time.Now().Add(time.Hour).Unix(),
		})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string][]string{"tokens": {tok}}) //nolint:errcheck // test server
	}))
	t.Cleanup(original.Close)
	backend := func(extra string) string {
		return `[identity_backend]
class = "remote"
[identity_backend.options]
url = "` + original.URL + `/jwt/"
public_keys = ['''` + string(pem) + `''']
` + extra
	}
	login := map[string]string{"username": "ada", "password": "ada password"}

	legacy := kiseetest.Start(t, "[jwt]\nlegacy_es256k = true\n"+backend(""))
	r := Do(t, "POST", legacy.URL+"/jwt/", login).WantStatus(t, 201)
	if toks, _ := r.JSON["tokens"].([]any); len(toks) != 1 {
		t.Fatalf("tokens = %v", r.JSON["tokens"])
	}

	strict := kiseetest.Start(t, backend(""))
	r = Do(t, "POST", strict.URL+"/jwt/", login)
	if r.StatusCode == 201 {
		t.Fatal("a Kisee without legacy_es256k accepted an ES256-labelled secp256k1 token")
	}

	override := kiseetest.Start(t, "[jwt]\nlegacy_es256k = true\n"+backend("legacy_es256k = false\n"))
	r = Do(t, "POST", override.URL+"/jwt/", login)
	if r.StatusCode == 201 || strings.Contains(string(r.Body), "tokens") {
		t.Fatalf("the backend's own legacy_es256k = false was ignored: %d %s", r.StatusCode, r.Body)
	}
}
