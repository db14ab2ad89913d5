package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

func pemOf(t *testing.T, k *token.PublicKey) string {
	t.Helper()
	b, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A key rotation (SPEC 1): the previous and next keys are published next to
// the current one, and tokens of a previous key are still accepted; a key
// not listed any more is refused.
func TestKeyRotation(t *testing.T) {
	previous, _ := token.GenerateKey(token.ES256)
	next, _ := token.GenerateKey(token.EdDSA)
	retired, _ := token.GenerateKey(token.ES256)
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, paseetest.SQLite, "[jwt]\nprevious_public_keys = ['''"+pemOf(t, previous.Public())+"''']\nnext_public_keys = ['''"+pemOf(t, next.Public())+"''']\n"+paseetest.KiseeProvider("kisee", k.URL))

	r := Do(t, "GET", p.URL+"/jwks.json", nil).WantStatus(t, 200)
	keys, err := token.ParseJWKS(r.Body)
	if err != nil || len(keys) != 3 || keys[0].KeyID() != p.Key.KeyID() || keys[1].KeyID() != next.KeyID() || keys[2].KeyID() != previous.KeyID() {
		t.Fatalf("JWKS: %v, %d keys", err, len(keys))
	}

	login := Do(t, "POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": "alice", "password": alicePassword}).WantStatus(t, 201)
	access := login.JSON["access_token"].(string)
	claims, err := token.NewVerifier(token.NewStaticKeySet(p.Key.Public()), token.WithTypes(token.TypeAccess)).Verify(context.Background(), access)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		key    *token.PrivateKey
		status int
	}{"previous key": {previous, 200}, "next key": {next, 200}, "retired key": {retired, 401}} {
		tok, _ := token.NewSigner(tc.key).Sign(token.TypeAccess, *claims)
		if got := Do(t, "GET", p.URL+"/groups/", nil, Bearer(tok)...).StatusCode; got != tc.status {
			t.Errorf("token of the %s: %d, want %d", name, got, tc.status)
		}
	}
}

// legacy_es256k (SPEC 1): a Kisee with the original secp256k1 key labels
// its tokens ES256 as the Python services did, and a Pasee configured the
// same way accepts them; without the flag it refuses them.
func TestLegacyES256K(t *testing.T) {
	secp, _ := token.GenerateKey(token.ES256K)
	secpPEM, _ := secp.MarshalPEM()
	k := kiseetest.Start(t, "[jwt]\nlegacy_es256k = true\nprivate_key = '''"+string(secpPEM)+"'''\n")

	r := Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).WantStatus(t, 201)
	raw := r.JSON["tokens"].([]any)[0].(string)
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var hdr map[string]any
	_ = json.Unmarshal(h, &hdr)
	if hdr["alg"] != "ES256" {
		t.Fatalf("legacy Kisee header: %s", h)
	}

	provider := func(name string, legacy bool) string {
		extra := "public_keys = ['''" + pemOf(t, secp.Public()) + "''']"
		if legacy {
			extra += "\nlegacy_es256k = true"
		}
		return strings.Replace(paseetest.KiseeProvider(name, k.URL, extra), "registration = true\n", "", 1)
	}
	p := paseetest.Start(t, paseetest.SQLite, provider("old", true)+provider("strict", false))
	Do(t, "POST", p.URL+"/tokens/?idp=old", map[string]string{"login": "alice", "password": alicePassword}).WantStatus(t, 201)
	Do(t, "POST", p.URL+"/tokens/?idp=strict", map[string]string{"login": "alice", "password": alicePassword}).WantProblem(t, 502, "Bad answer from strict")
}
