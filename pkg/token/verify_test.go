package token

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var farFuture = time.Now().Add(24 * time.Hour)

func mustKey(t testing.TB, alg Algorithm) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forge builds a compact JWS from raw header and claims, signing with k
// whatever the header says (nil k: an empty signature).
func forge(t *testing.T, hdr map[string]any, claims map[string]any, k *PrivateKey) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	var sig []byte
	if k != nil {
		var err error
		if sig, err = sign(k, []byte(input)); err != nil {
			t.Fatal(err)
		}
	}
	return input + "." + b64.EncodeToString(sig)
}

func validClaims() map[string]any {
	now := time.Now()
	return map[string]any{"iss": "kisee.example", "sub": "ada", "aud": "pasee", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
}

func TestSignVerify(t *testing.T) {
	k := mustKey(t, ES256)
	now := time.Now().Truncate(time.Second)
	in := Claims{Issuer: "kisee.example", Subject: "ada", Audience: []string{"pasee"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: "j1"}
	in.Set("groups", []string{"staff"})
	tok, err := NewSigner(k).Sign(TypeAccess, in)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(NewStaticKeySet(k.Public()), WithTypes(TypeAccess), WithIssuer("kisee.example"), WithAudience("pasee"))
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := c.Strings("groups")
	if c.Subject != "ada" || c.ID != "j1" || !c.ExpiresAt.Equal(in.ExpiresAt) || len(groups) != 1 || groups[0] != "staff" {
		t.Fatalf("claims changed: %+v", c)
	}
	var hdr map[string]any
	h, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	_ = json.Unmarshal(h, &hdr)
	if hdr["alg"] != "ES256" || hdr["typ"] != "at+jwt" || hdr["kid"] != k.KeyID() || len(hdr) != 3 {
		t.Fatalf("header = %v", hdr)
	}
}

// Every refusal the suite promises, each with the reason it must report.
func TestVerifyRefusals(t *testing.T) {
	k := mustKey(t, ES256)
	other := mustKey(t, ES256)
	p384 := mustKey(t, ES384)
	rsaKey := mustKey(t, RS256)
	pubPEM, _ := k.Public().MarshalPEM()
	good := map[string]any{"alg": "ES256", "typ": "JWT", "kid": k.KeyID()}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for key, v := range m {
			out[key] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	now := time.Now()
	hmacToken := func() string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT"})
		p, _ := json.Marshal(validClaims())
		input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
		mac := hmac.New(sha256.New, pubPEM)
		mac.Write([]byte(input))
		return input + "." + b64.EncodeToString(mac.Sum(nil))
	}
	tampered := func() string {
		tok := forge(t, good, validClaims(), k)
		parts := strings.Split(tok, ".")
		c := validClaims()
		c["sub"] = "root"
		p, _ := json.Marshal(c)
		return parts[0] + "." + b64.EncodeToString(p) + "." + parts[2]
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", forge(t, with(good, "alg", "none"), validClaims(), nil), ErrAlgorithm},
		{"alg None", forge(t, with(good, "alg", "None"), validClaims(), nil), ErrAlgorithm},
		{"HMAC signed with the public key", hmacToken(), ErrAlgorithm},
		{"header ES384, key ES256", forge(t, with(good, "alg", "ES384"), validClaims(), p384), ErrAlgorithm},
		{"header RS256, key ES256", forge(t, with(good, "alg", "RS256"), validClaims(), rsaKey), ErrAlgorithm},
		{"header ES256K, key ES256", forge(t, with(good, "alg", "ES256K"), validClaims(), mustKey(t, ES256K)), ErrAlgorithm},
		{"no alg", forge(t, with(good, "alg", nil), validClaims(), k), ErrAlgorithm},
		{"signed by another key", forge(t, with(good, "kid", other.KeyID()), validClaims(), other), ErrSignature},
		{"injected kid (path)", forge(t, with(good, "kid", "../../../dev/null"), validClaims(), other), ErrSignature},
		{"injected kid (SQL)", forge(t, with(good, "kid", "' OR 1=1 --"), validClaims(), other), ErrSignature},
		{"jku header", forge(t, with(good, "jku", "http://evil.example/jwks.json"), validClaims(), k), ErrHeader},
		{"x5u header", forge(t, with(good, "x5u", "http://evil.example/cert.pem"), validClaims(), k), ErrHeader},
		{"embedded jwk", forge(t, with(good, "jwk", map[string]any{"kty": "EC"}), validClaims(), k), ErrHeader},
		{"x5c header", forge(t, with(good, "x5c", []string{"MIIB"}), validClaims(), k), ErrHeader},
		{"crit header", forge(t, with(good, "crit", []string{"exp"}), validClaims(), k), ErrHeader},
		{"b64 false", forge(t, with(good, "b64", false), validClaims(), k), ErrHeader},
		{"typ at+jwt where JWT expected", forge(t, with(good, "typ", "at+jwt"), validClaims(), k), ErrType},
		{"typ missing", forge(t, with(good, "typ", nil), validClaims(), k), ErrType},
		{"expired", forge(t, good, with(validClaims(), "exp", now.Add(-time.Minute).Unix()), k), ErrExpired},
		{"not yet valid", forge(t, good, with(validClaims(), "nbf", now.Add(time.Hour).Unix()), k), ErrNotYetValid},
		{"issued in the future", forge(t, good, with(validClaims(), "iat", now.Add(time.Hour).Unix()), k), ErrNotYetValid},
		{"wrong issuer", forge(t, good, with(validClaims(), "iss", "evil.example"), k), ErrIssuer},
		{"no issuer", forge(t, good, with(validClaims(), "iss", nil), k), ErrIssuer},
		{"wrong audience", forge(t, good, with(validClaims(), "aud", "other"), k), ErrAudience},
		{"no exp", forge(t, good, with(validClaims(), "exp", nil), k), ErrMalformed},
		{"exp as string", forge(t, good, with(validClaims(), "exp", "tomorrow"), k), ErrMalformed},
		{"sub as number", forge(t, good, with(validClaims(), "sub", 42), k), ErrMalformed},
		{"tampered payload", tampered(), ErrSignature},
		{"two parts", "abc.def", ErrMalformed},
		{"four parts", "a.b.c.d", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"header not base64", "!!!.e30.sig", ErrMalformed},
		{"header not JSON", b64.EncodeToString([]byte("[")) + ".e30.c2ln", ErrMalformed},
		{"oversized", strings.Repeat("a", DefaultMaxTokenSize+1), ErrMalformed},
	}
	v := NewVerifier(NewStaticKeySet(k.Public()), WithIssuer("kisee.example"), WithAudience("pasee"), WithLeeway(5*time.Second))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// And the unaltered token passes: the refusals are not refusing everything.
	if _, err := v.Verify(context.Background(), forge(t, good, validClaims(), k)); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
}

func TestLeewayToleratesSmallSkew(t *testing.T) {
	k := mustKey(t, EdDSA)
	now := time.Now()
	tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", IssuedAt: now.Add(10 * time.Second), ExpiresAt: now.Add(-10 * time.Second)})
	if _, err := NewVerifier(NewStaticKeySet(k.Public()), WithLeeway(30*time.Second)).Verify(context.Background(), tok); err != nil {
		t.Fatalf("10 s of skew refused with 30 s leeway: %v", err)
	}
	if _, err := NewVerifier(NewStaticKeySet(k.Public()), WithLeeway(0)).Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("without leeway: %v, want expired", err)
	}
}

func TestTypeComparisonFollowsRFC7515(t *testing.T) {
	k := mustKey(t, ES256)
	v := NewVerifier(NewStaticKeySet(k.Public()), WithTypes(TypeAccess))
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
		tok := forge(t, map[string]any{"alg": "ES256", "typ": typ}, validClaims(), k)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("typ %q refused: %v", typ, err)
		}
	}
	if _, err := v.Verify(context.Background(), forge(t, map[string]any{"alg": "ES256", "typ": "refresh+jwt"}, validClaims(), k)); !errors.Is(err, ErrType) {
		t.Errorf("refresh token accepted as access token: %v", err)
	}
}

func TestLegacyES256K(t *testing.T) {
	k := mustKey(t, ES256K)
	keys := NewStaticKeySet(k.Public())
	legacyTok, err := NewSigner(k, WithLegacyES256K(true)).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := b64.DecodeString(strings.Split(legacyTok, ".")[0])
	if !strings.Contains(string(h), `"alg":"ES256"`) {
		t.Fatalf("legacy header = %s", h)
	}
	modernTok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})

	strict := NewVerifier(keys)
	if _, err := strict.Verify(context.Background(), legacyTok); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("strict verifier: legacy token err = %v, want ErrAlgorithm", err)
	}
	if _, err := strict.Verify(context.Background(), modernTok); err != nil {
		t.Errorf("strict verifier refused ES256K: %v", err)
	}
	legacy := NewVerifier(keys, AcceptLegacyES256K(true))
	for _, tok := range []string{legacyTok, modernTok} {
		if _, err := legacy.Verify(context.Background(), tok); err != nil {
			t.Errorf("legacy verifier refused: %v", err)
		}
	}
	// Legacy mode does not let an "ES256" token signed by secp256k1 pass
	// against a real P-256 key, nor the reverse.
	p256 := mustKey(t, ES256)
	mixed := NewVerifier(NewStaticKeySet(p256.Public()), AcceptLegacyES256K(true))
	if _, err := mixed.Verify(context.Background(), legacyTok); err == nil {
		t.Error("legacy token verified against an unrelated P-256 key")
	}
	// Legacy has no effect on non-secp256k1 signers.
	tok, _ := NewSigner(p256, WithLegacyES256K(true)).Sign(TypeJWT, Claims{Subject: "x", ExpiresAt: farFuture})
	if _, err := mixed.Verify(context.Background(), tok); err != nil {
		t.Errorf("P-256 signer with legacy flag: %v", err)
	}
}

func TestKeyRotationThroughKeyRing(t *testing.T) {
	old, current, next := mustKey(t, ES256), mustKey(t, ES256), mustKey(t, EdDSA)
	ring := KeyRing{Current: current, Next: []*PublicKey{next.Public()}, Previous: []*PublicKey{old.Public()}}
	v := NewVerifier(ring.KeySet())
	for name, k := range map[string]*PrivateKey{"previous": old, "current": current, "next": next} {
		tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("token of the %s key refused: %v", name, err)
		}
	}
	retired := mustKey(t, ES256)
	tok, _ := NewSigner(retired).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrSignature) {
		t.Errorf("token of a key rotated out: %v, want ErrSignature", err)
	}
	doc, _ := ring.JWKS()
	keys, err := ParseJWKS(doc)
	if err != nil || len(keys) != 3 || keys[0].KeyID() != current.KeyID() {
		t.Fatalf("ring JWKS: %v, %d keys", err, len(keys))
	}
}
