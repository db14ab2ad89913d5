package attack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// target is where a kind of token is presented, and the refusal expected.
type target struct {
	label  string
	svc    string
	method string
	path   func(claims map[string]any) string
	status int    // of a refusal
	title  string // of a refusal, "" for any
	ok     int    // status of the unaltered control token
}

// family is a kind of token: a real one, its issuer's key, and the
// places that take it.
type family struct {
	label    string
	real     string // a genuine token of this kind
	control  string // a genuine token to re-sign for the control case
	key      *ecdsa.PrivateKey
	wrongTyp string
	targets  []target
	extra    func(h, c map[string]any, sign signer) []forgery
}

type forgery struct{ name, token string }

// attackerKeys are the attacker's keys of every type.
type attackerKeys struct {
	ec      *ecdsa.PrivateKey
	rsa     *rsa.PrivateKey
	ed      ed25519.PrivateKey
	certB64 string // a self-signed certificate of ec, for x5c
	jwk     map[string]any
	kid     string
}

func newAttackerKeys(t *testing.T, e *env) attackerKeys {
	t.Helper()
	a := attackerKeys{ec: ecdsaKey(t, e.attacker), kid: e.attacker.KeyID()}
	var err error
	if a.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, a.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kisee"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &a.ec.PublicKey, a.ec)
	if err != nil {
		t.Fatal(err)
	}
	a.certB64 = base64.StdEncoding.EncodeToString(der)
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(e.evil.jwks, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("attacker JWKS: %v", err)
	}
	a.jwk = set.Keys[0]
	return a
}

// forgeries returns every way of tampering with a token of the family.
// Each keeps the genuine claims and header except for what it attacks.
func (e *env) forgeries(t *testing.T, f family, atk attackerKeys) []forgery {
	t.Helper()
	h, c := headerOf(t, f.real), claimsOf(t, f.real)
	real := es256(f.key)
	pubDER, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(pubDER) + "\n-----END PUBLIC KEY-----\n"
	parts := strings.Split(f.real, ".")
	now := time.Now()
	other := jws(h, with(c, "jti", "another-token"), real)
	tampered := with(c, "sub", "root")
	if _, ok := c["groups"]; ok {
		tampered = with(c, "groups", []string{"staff", "admin"})
	}
	tamperedJSON, _ := json.Marshal(tampered)
	noneHeader, _ := json.Marshal(with(h, "alg", "none"))
	arrayInput := parts[0] + "." + b64.EncodeToString([]byte(`[1]`))
	out := []forgery{
		{"alg none", jws(with(h, "alg", "none"), c, noSignature)},
		{"alg None", jws(with(h, "alg", "None"), c, noSignature)},
		{"alg none, genuine signature kept", b64.EncodeToString(noneHeader) + "." + parts[1] + "." + parts[2]},
		{"alg absent", jws(with(h, "alg", nil), c, real)},
		{"HS256 keyed with the public key PEM", jws(with(h, "alg", "HS256"), c, hs256([]byte(pubPEM)))},
		{"HS256 keyed with the public key DER", jws(with(h, "alg", "HS256"), c, hs256(pubDER))},
		{"HS512 keyed with the public key PEM", jws(with(h, "alg", "HS512"), c, hs256([]byte(pubPEM)))},
		{"header ES384 on the key's ES256 signature", jws(with(h, "alg", "ES384"), c, real)},
		{"header RS256, attacker's RSA key", jws(with(h, "alg", "RS256", "kid", nil), c, rawSigner(atk.rsa, crypto.SHA256))},
		{"header PS256, attacker's RSA key", jws(with(h, "alg", "PS256", "kid", nil), c, rawSigner(atk.rsa, crypto.SHA256))},
		{"header EdDSA, attacker's Ed25519 key", jws(with(h, "alg", "EdDSA", "kid", nil), c, rawSigner(atk.ed, 0))},
		{"attacker's key, genuine kid", jws(h, c, es256(atk.ec))},
		{"attacker's key, no kid", jws(with(h, "kid", nil), c, es256(atk.ec))},
		{"kid path traversal", jws(with(h, "kid", "../../../../../../dev/null"), c, es256(atk.ec))},
		{"kid URL", jws(with(h, "kid", e.evil.URL+"/kid.json"), c, es256(atk.ec))},
		{"kid SQL injection", jws(with(h, "kid", "x' UNION SELECT 'attacker' --"), c, es256(atk.ec))},
		{"kid with NUL", jws(with(h, "kid", "a\x00b"), c, es256(atk.ec))},
		{"jku to the attacker's JWKS", jws(with(h, "jku", e.evil.URL+"/jwks.json", "kid", atk.kid), c, es256(atk.ec))},
		{"x5u to the attacker's certificate", jws(with(h, "x5u", e.evil.URL+"/cert.pem", "kid", nil), c, es256(atk.ec))},
		{"embedded jwk of the attacker", jws(with(h, "jwk", atk.jwk, "kid", atk.kid), c, es256(atk.ec))},
		{"x5c of the attacker", jws(with(h, "x5c", []string{atk.certB64}, "kid", nil), c, es256(atk.ec))},
		{"jku, signed by the genuine key", jws(with(h, "jku", e.evil.URL+"/jwks.json"), c, real)},
		{"crit header", jws(with(h, "crit", []string{"exp"}), c, real)},
		{"b64 false", jws(with(h, "b64", false), c, real)},
		{"expired", jws(h, with(c, "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix()), real)},
		{"not yet valid", jws(h, with(c, "nbf", now.Add(time.Hour).Unix()), real)},
		{"issued in the future", jws(h, with(c, "iat", now.Add(time.Hour).Unix()), real)},
		{"no exp", jws(h, with(c, "exp", nil), real)},
		{"exp as a string", jws(h, with(c, "exp", "9999999999"), real)},
		{"wrong iss", jws(h, with(c, "iss", "https://evil.example"), real)},
		{"no iss", jws(h, with(c, "iss", nil), real)},
		{"typ " + f.wrongTyp, jws(with(h, "typ", f.wrongTyp), c, real)},
		{"no typ", jws(with(h, "typ", nil), c, real)},
		{"tampered payload", parts[0] + "." + b64.EncodeToString(tamperedJSON) + "." + parts[2]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(other, ".")[2]},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-8]},
		{"stripped signature", parts[0] + "." + parts[1] + "."},
		{"signature not base64url", parts[0] + "." + parts[1] + ".!!!!"},
		{"oversized (20 KiB of claims)", jws(h, with(c, "pad", strings.Repeat("a", 20<<10)), real)},
		{"five parts (JWE)", parts[0] + ".." + parts[1] + ".." + parts[2]},
		{"two parts", parts[0] + "." + parts[1]},
		{"not a JWT", "not-a-jwt"},
		{"header not JSON", b64.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2]},
		{"claims a JSON array", arrayInput + "." + b64.EncodeToString(real([]byte(arrayInput)))},
	}
	if f.extra != nil {
		out = append(out, f.extra(h, c, real)...)
	}
	return out
}

// tokenAttacks are the forgeries of every token kind at every place that
// takes it, the control cases that show the forging is right, and the
// confusions between kinds.
func (e *env) tokenAttacks(t *testing.T) []attack {
	t.Helper()
	atk := newAttackerKeys(t, e)
	jti := func(c map[string]any) string { s, _ := c["jti"].(string); return "/jwt/" + url.PathEscape(s) }
	fixed := func(p string) func(map[string]any) string { return func(map[string]any) string { return p } }
	kisee := family{
		label: "Kisee identity token", real: e.aliceID, control: e.aliceID, key: e.kiseeKey, wrongTyp: "at+jwt",
		targets: []target{
			{"at Kisee GET /jwt/{jti}", "kisee", "GET", jti, 401, "", 200},
			{"at Pasee POST /tokens/?idp=kisee", "pasee", "POST", fixed("/tokens/?idp=kisee"), 403, "Can not authenticate on kisee", 201},
		},
	}
	access := family{
		label: "Pasee access token", real: e.bob.access, control: e.bob.access, key: e.paseeKey, wrongTyp: "JWT",
		targets: []target{
			{"at Pasee GET /groups/", "pasee", "GET", fixed("/groups/"), 401, "Invalid token", 200},
			{"at Pasee GET /users/kisee-bob", "pasee", "GET", fixed("/users/kisee-bob"), 401, "Invalid token", 200},
		},
		extra: func(h, c map[string]any, sign signer) []forgery {
			return []forgery{
				{"wrong aud", jws(h, with(c, "aud", "other.example.com"), sign)},
				{"no aud", jws(h, with(c, "aud", nil), sign)},
				{"refresh_token claim on an access token", jws(h, with(c, "refresh_token", true), sign)},
			}
		},
	}
	refresh := family{
		label: "Pasee refresh token", real: e.bob.refresh, control: e.bobControl.refresh, key: e.paseeKey, wrongTyp: "at+jwt",
		targets: []target{
			{"at Pasee POST /tokens/?refresh", "pasee", "POST", fixed("/tokens/?refresh"), 401, "", 201},
			{"at Pasee DELETE /tokens/", "pasee", "DELETE", fixed("/tokens/"), 401, "", 0},
		},
		extra: func(h, c map[string]any, sign signer) []forgery {
			return []forgery{
				{"no refresh_token claim", jws(h, with(c, "refresh_token", nil), sign)},
				{"no sid", jws(h, with(c, "sid", nil), sign)},
			}
		},
	}
	var out []attack
	for _, f := range []family{kisee, access, refresh} {
		for _, fg := range e.forgeries(t, f, atk) {
			claims := map[string]any{}
			if parts := strings.Split(fg.token, "."); len(parts) == 3 {
				if p, err := b64.DecodeString(parts[1]); err == nil {
					_ = json.Unmarshal(p, &claims)
				}
			}
			if claims["jti"] == nil {
				claims["jti"] = claimsOf(t, f.real)["jti"]
			}
			for _, tg := range f.targets {
				out = append(out, attack{
					name: f.label + ", " + fg.name + ", " + tg.label, svc: tg.svc, method: tg.method, path: tg.path(claims),
					headers: bearer(fg.token), status: tg.status, title: tg.title,
				})
			}
			// Introspection never calls a forgery active.
			if f.key == e.paseeKey {
				out = append(out, attack{
					name: f.label + ", " + fg.name + ", at Pasee POST /tokens/introspect", svc: "pasee", method: "POST", path: "/tokens/introspect",
					body: map[string]string{"token": fg.token}, headers: paseetest.IntrospectionAuth(), status: 200,
					check: func(t *testing.T, r *response) {
						if r.json["active"] != false {
							t.Fatalf("forgery introspected as %s", r.body)
						}
					},
				})
			}
		}
		// The control: the genuine claims and header re-signed with the
		// genuine key are accepted, so each refusal above is due to what
		// the forgery changed.
		h, c := headerOf(t, f.control), claimsOf(t, f.control)
		resigned := jws(h, c, es256(f.key))
		for _, tg := range f.targets {
			if tg.ok == 0 {
				continue
			}
			out = append(out, attack{name: f.label + ", control: re-signed genuine token, " + tg.label, svc: tg.svc, method: tg.method, path: tg.path(c),
				headers: bearer(resigned), status: tg.ok})
		}
	}
	// A genuinely signed refresh token of a session that does not exist.
	rc := claimsOf(t, e.bob.refresh)
	out = append(out, attack{name: "Pasee refresh token of an unknown session", svc: "pasee", method: "POST", path: "/tokens/?refresh",
		headers: bearer(jws(headerOf(t, e.bob.refresh), with(rc, "sid", "not-a-session"), es256(e.paseeKey))), status: 401, title: "Session revoked"})
	// A token its owner revoked, at Kisee and at Pasee.
	revoked := e.kiseeLogin(t, "alice", alicePassword)
	revokedJTI, _ := claimsOf(t, revoked)["jti"].(string)
	if r := do(t, "DELETE", e.kiseeURL+"/jwt/"+revokedJTI, nil, bearer(revoked)...); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	out = append(out,
		attack{name: "revoked Kisee token at Kisee", svc: "kisee", method: "GET", path: "/jwt/" + revokedJTI, headers: bearer(revoked), status: 401, title: "Token revoked"},
		attack{name: "revoked Kisee token at Pasee", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", headers: bearer(revoked), status: 403, title: "Can not authenticate on kisee"},
	)
	return append(out, e.confusions()...)
}

// confusions are genuine tokens presented where another kind is expected,
// and the tokens of keys Pasee no longer trusts.
func (e *env) confusions() []attack {
	resetJTI := ""
	if parts := strings.Split(e.aliceReset, "."); len(parts) == 3 {
		if p, err := b64.DecodeString(parts[1]); err == nil {
			var c map[string]any
			_ = json.Unmarshal(p, &c)
			resetJTI, _ = c["jti"].(string)
		}
	}
	accessJTI := ""
	if p, err := b64.DecodeString(strings.Split(e.bob.access, ".")[1]); err == nil {
		var c map[string]any
		_ = json.Unmarshal(p, &c)
		accessJTI, _ = c["jti"].(string)
	}
	return []attack{
		{name: "Pasee access token used as refresh token", svc: "pasee", method: "POST", path: "/tokens/?refresh", headers: bearer(e.bob.access), status: 401, title: "Token is not a refresh token"},
		{name: "Pasee access token used to log out", svc: "pasee", method: "DELETE", path: "/tokens/", headers: bearer(e.bob.access), status: 401},
		{name: "Pasee refresh token used as access token", svc: "pasee", method: "GET", path: "/groups/", headers: bearer(e.bob.refresh), status: 401},
		{name: "Pasee refresh token used as access token on /users/", svc: "pasee", method: "GET", path: "/users/", headers: bearer(e.bob.refresh), status: 401},
		{name: "Kisee identity token used as Pasee access token", svc: "pasee", method: "GET", path: "/groups/", headers: bearer(e.aliceID), status: 401},
		{name: "Kisee identity token used as Pasee refresh token", svc: "pasee", method: "POST", path: "/tokens/?refresh", headers: bearer(e.aliceID), status: 401},
		{name: "Pasee access token used as Kisee identity token", svc: "kisee", method: "GET", path: "/jwt/" + accessJTI, headers: bearer(e.bob.access), status: 401},
		{name: "Pasee access token presented as a Kisee token to Pasee", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", headers: bearer(e.bob.access), status: 403},
		{name: "Pasee refresh token presented as a Kisee token to Pasee", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", headers: bearer(e.bob.refresh), status: 403},
		{name: "Kisee reset token used as identity token at GET /jwt/{jti}", svc: "kisee", method: "GET", path: "/jwt/" + resetJTI, headers: bearer(e.aliceReset), status: 401},
		{name: "Kisee reset token used to revoke at DELETE /jwt/{jti}", svc: "kisee", method: "DELETE", path: "/jwt/" + resetJTI, headers: bearer(e.aliceReset), status: 401},
		{name: "Kisee reset token used as password at Kisee", svc: "kisee", method: "POST", path: "/jwt/", body: map[string]string{"username": "alice", "password": e.aliceReset}, status: 403, title: "Failed identification"},
		{name: "Kisee reset token used as Basic password", svc: "kisee", method: "PATCH", path: "/users/alice/", headers: basic("alice", e.aliceReset), body: `[{"op":"replace","path":"/password","value":"a brand new passphrase"}]`, status: 401},
		{name: "Kisee reset token used to log in at Pasee", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", headers: bearer(e.aliceReset), status: 403, title: "Can not authenticate on kisee"},
		{name: "Kisee reset token used as password at Pasee", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", body: map[string]string{"login": "alice", "password": e.aliceReset}, status: 403},
		{name: "Kisee reset token used as Pasee access token", svc: "pasee", method: "GET", path: "/groups/", headers: bearer(e.aliceReset), status: 401},
		{name: "Kisee reset token used as Pasee refresh token", svc: "pasee", method: "POST", path: "/tokens/?refresh", headers: bearer(e.aliceReset), status: 401},
		{name: "Kisee reset token of alice used on bob", svc: "kisee", method: "PATCH", path: "/users/bob/", headers: bearer(e.aliceReset), body: `[{"op":"replace","path":"/password","value":"a brand new passphrase"}]`, status: 403, title: "Token does not apply to user resource"},
		{name: "Kisee identity token used to change a password", svc: "kisee", method: "PATCH", path: "/users/alice/", headers: bearer(e.aliceID), body: `[{"op":"replace","path":"/password","value":"a brand new passphrase"}]`, status: 403, title: "Use a password lost token or basic auth"},
		{name: "Kisee token of a key Pasee rotated out", svc: "pasee", method: "POST", path: "/tokens/?idp=rotated", headers: bearer(e.aliceID), status: 403, title: "Can not authenticate on rotated"},
		{name: "Kisee token whose provider publishes a malformed key", svc: "pasee", method: "POST", path: "/tokens/?idp=evil", headers: bearer(e.aliceID), status: 503, title: "evil not responding"},
		{name: "Kisee token at an unknown provider", svc: "pasee", method: "POST", path: "/tokens/?idp=nope", headers: bearer(e.aliceID), status: 400, title: "Identity provider not implemented"},
		{name: "Kisee token of someone else's jti", svc: "kisee", method: "GET", path: "/jwt/" + resetJTI, headers: bearer(e.aliceID), status: 404},
		{name: "Bearer with an empty token", svc: "kisee", method: "GET", path: "/jwt/x", headers: []string{"Authorization", "Bearer "}, status: 401},
		{name: "Bearer scheme only", svc: "pasee", method: "GET", path: "/groups/", headers: []string{"Authorization", "Bearer"}, status: 401},
		{name: "Basic credentials that are not base64", svc: "kisee", method: "GET", path: "/jwt/x", headers: []string{"Authorization", "Basic !!!"}, status: 401},
		{name: "Basic credentials with a wrong password", svc: "kisee", method: "GET", path: "/jwt/x", headers: basic("alice", "wrong"), status: 401, title: "Failed identification"},
		{name: "Basic credentials at Pasee", svc: "pasee", method: "GET", path: "/groups/", headers: basic("kisee-bob", bobPassword), status: 401},
		{name: "reset token in the recovery page query, tampered", svc: "kisee", method: "GET", path: "/password_recoveries/?token=" + url.QueryEscape(e.aliceReset[:len(e.aliceReset)-4]+"AAAA"), status: 401},
		{name: "reset token in the recovery page query, alg none", svc: "kisee", method: "GET", path: "/password_recoveries/?token=" + url.QueryEscape(strings.Join(strings.Split(e.aliceReset, ".")[:2], ".")+"."), status: 401},
	}
}
