package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// fuzzKeys returns the keys the fuzz targets sign with: one per
// algorithm, so that every signature check runs (RSA from testdata:
// generating one is slow).
func fuzzKeys(f *testing.F) []*PrivateKey {
	var keys []*PrivateKey
	for _, alg := range []Algorithm{ES256, ES384, ES256K, EdDSA} {
		k, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	pemRSA, err := os.ReadFile("testdata/rsa2048.pem")
	if err != nil {
		f.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(pemRSA)
	if err != nil {
		f.Fatal(err)
	}
	return append(keys, k)
}

// fuzzNow is the fixed time of the fuzz targets' verifiers.
func fuzzNow() time.Time { return time.Unix(1_800_000_000, 0) }

// classified reports whether err is one of the reasons Verify may give.
// The services map each to 401 (or 503 for ErrKeySetUnavailable); an
// error outside this list would become a 500.
func classified(err error) bool {
	for _, e := range []error{ErrMalformed, ErrAlgorithm, ErrHeader, ErrType, ErrUnknownKey, ErrSignature,
		ErrExpired, ErrNotYetValid, ErrIssuer, ErrAudience, ErrKeySetUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func fuzzVerifier(keys []*PrivateKey) *Verifier {
	var pubs []*PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	return NewVerifier(NewStaticKeySet(pubs...), WithIssuer("iss.example"), WithAudience("aud.example"),
		WithTypes(TypeJWT, TypeAccess), WithClock(fuzzNow))
}

// FuzzVerify feeds arbitrary strings to Verify. A token it accepts must
// have been signed by one of our keys exactly as it is: the fuzzer cannot
// forge a signature, so any acceptance of an input we did not sign (alg
// confusion, a stripped or reused signature, a parsing gap between what is
// checked and what is read) is a forgery. Every refusal must carry one of
// the documented reasons.
func FuzzVerify(f *testing.F) {
	keys := fuzzKeys(f)
	signed := map[string]bool{}
	claims := Claims{Issuer: "iss.example", Subject: "ada", Audience: []string{"aud.example"}, IssuedAt: fuzzNow(), ExpiresAt: fuzzNow().Add(time.Hour), ID: "j1"}
	claims.Set("groups", []string{"staff"})
	for _, k := range keys {
		for _, typ := range []string{TypeJWT, TypeAccess, TypeRefresh} {
			tok, err := NewSigner(k).Sign(typ, claims)
			if err != nil {
				f.Fatal(err)
			}
			signed[tok[:strings.LastIndexByte(tok, '.')]] = true
			f.Add(tok)
			parts := strings.Split(tok, ".")
			f.Add(parts[0] + "." + parts[1] + ".")                                                 // stripped signature
			f.Add(b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".") // alg none
			f.Add(parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"iss.example","sub":"root","aud":"aud.example","exp":1900000000}`)) + "." + parts[2])
		}
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", strings.Repeat("A", 100) + "." + strings.Repeat("B", 100) + "." + strings.Repeat("C", 86)} {
		f.Add(s)
	}
	v := fuzzVerifier(keys)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			if !classified(err) {
				t.Fatalf("Verify(%q): unclassified error %v", raw, err)
			}
			return
		}
		last := strings.LastIndexByte(raw, '.')
		if !signed[raw[:last]] {
			t.Fatalf("Verify accepted %q, which none of our keys signed (claims %+v)", raw, c)
		}
	})
}

// FuzzVerifySigned signs arbitrary header and payload bytes with a real
// key, as a compromised-looking but genuinely signed token would be, and
// checks that what Verify accepts obeys the policy: the header names the
// key's algorithm, carries no parameter a verifier could be tricked into
// following, has an accepted type; the claims are current, from the
// issuer, for the audience.
func FuzzVerifySigned(f *testing.F) {
	good := `{"iss":"iss.example","sub":"ada","aud":"aud.example","iat":1800000000,"exp":1800003600,"jti":"j"}`
	for _, h := range []string{
		`{"alg":"ES256","typ":"JWT"}`, `{"alg":"ES256","typ":"at+jwt","kid":"x"}`, `{"alg":"none","typ":"JWT"}`, `{"alg":"HS256","typ":"JWT"}`,
		`{"alg":"ES256","typ":"JWT","jku":"http://evil/"}`, `{"alg":"ES256","typ":"JWT","JKU":"http://evil/"}`, `{"alg":"ES256","typ":"application/JWT"}`,
		`{"alg":"none","alg":"ES256","typ":"JWT"}`, `{"Alg":"ES256","typ":"JWT"}`, `{"alg":"ES256","typ":"JWT","crit":["exp"]}`, `{"alg":"ES256"}`,
		`{"alg":"ES256","typ":"JWT","b64":false}`, `[]`, `null`, `{"alg":"ES256","typ":"JWT"} trailing`,
	} {
		for _, p := range []string{good, `{"iss":"iss.example","aud":["x","aud.example"],"exp":1800000001.5}`, `{"exp":"1800003600"}`,
			`{"iss":"iss.example","aud":"aud.example","exp":1800003600,"nbf":1900000000}`, `{"iss":"evil","aud":"aud.example","exp":1800003600}`,
			`{"iss":"iss.example","aud":"aud.example","exp":1e400}`, `{"iss":"iss.example","aud":"aud.example","exp":-1}`, `null`, `[]`, `{"iss":"iss.example","iss":"evil","aud":"aud.example","exp":1800003600}`} {
			f.Add([]byte(h), []byte(p))
		}
	}
	keys := fuzzKeys(f)
	v := fuzzVerifier(keys)
	key := keys[0] // ES256
	forbidden := map[string]bool{"crit": true, "jku": true, "x5u": true, "jwk": true, "x5c": true, "b64": true, "enc": true}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
		sig, err := sign(key, []byte(input))
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), input+"."+b64.EncodeToString(sig))
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error %v for header %q payload %q", err, header, payload)
			}
			return
		}
		// The header, read as a plain JSON object (keys compared without
		// case, as encoding/json matches struct fields).
		var h map[string]any
		if json.Unmarshal(header, &h) != nil || h == nil {
			t.Fatalf("accepted a header that is not a JSON object: %q", header)
		}
		alg, typ := "", ""
		for name, val := range h {
			lower := strings.ToLower(name)
			if forbidden[lower] {
				t.Fatalf("accepted header parameter %q: %q", name, header)
			}
			s, _ := val.(string)
			switch lower {
			case "alg":
				alg = s
			case "typ":
				typ = normalizeType(s)
			}
		}
		if alg != string(ES256) && !bytes.Contains(header, []byte(`"ES256"`)) {
			t.Fatalf("accepted header %q: alg is not the key's ES256", header)
		}
		if typ != "jwt" && typ != "at+jwt" && !bytes.Contains(bytes.ToLower(header), []byte("jwt")) {
			t.Fatalf("accepted header %q: type not accepted", header)
		}
		if c.Issuer != "iss.example" {
			t.Fatalf("accepted issuer %q", c.Issuer)
		}
		found := false
		for _, a := range c.Audience {
			found = found || a == "aud.example"
		}
		if !found {
			t.Fatalf("accepted audience %q", c.Audience)
		}
		if now := fuzzNow(); c.ExpiresAt.IsZero() || now.After(c.ExpiresAt.Add(30*time.Second)) || (!c.NotBefore.IsZero() && now.Add(30*time.Second).Before(c.NotBefore)) {
			t.Fatalf("accepted a token outside its validity: %+v", c)
		}
	})
}

// FuzzClaimsJSON reads arbitrary claims: no panic, and once read and
// written, claims read back to the same document (what a service signs is
// what a verifier reads).
func FuzzClaimsJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"iss":"a","sub":"b","aud":["c","d"],"exp":1800000000,"iat":1.5,"nbf":0,"jti":"x","groups":["staff"],"n":1e3}`,
		`{"aud":"x"}`, `{"exp":"x"}`, `{"sub":1}`, `{"aud":[1]}`, `null`, `[]`, `{"exp":1e11}`, `{"exp":1e400}`, `{"refresh_token":true,"sid":"s"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Claims
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		once, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("claims read from %q cannot be written: %v", data, err)
		}
		direct, err := c.MarshalJSON()
		if ref, rerr := referenceClaimsJSON(c); err != nil || rerr != nil || !bytes.Equal(direct, ref) {
			t.Fatalf("claims read from %q written as %s, encoding/json writes %s (%v, %v)", data, direct, ref, err, rerr)
		}
		var again Claims
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("claims written as %q cannot be read back: %v", once, err)
		}
		twice, err := json.Marshal(again)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("claims do not round-trip: %q then %q (%v)", once, twice, err)
		}
	})
}

// FuzzParseJWKS reads arbitrary JWK Sets (a provider's /jwks.json is not
// trusted input): no panic, and every key returned is a supported public
// signature key whose algorithm comes from its type.
func FuzzParseJWKS(f *testing.F) {
	var pubs []*PublicKey
	for _, k := range fuzzKeys(f) {
		pubs = append(pubs, k.Public())
	}
	set, err := MarshalJWKS(pubs...)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(set)
	for _, s := range []string{`{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"EC","crv":"secp256k1","x":"","y":""}]}`, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]}`, `null`, `{"keys":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			if _, aerr := ParseAlgorithm(string(k.Algorithm())); aerr != nil || k.KeyID() == "" || k.Raw() == nil {
				t.Fatalf("ParseJWKS(%q) returned an unusable key %+v", data, k)
			}
		}
	})
}
