package token_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

// A service signs with its current key and publishes its ring; a verifier
// holding the published keys accepts the token and reads its claims.
func Example() {
	key, _ := token.GenerateKey(token.ES256)
	signer := token.NewSigner(key)
	raw, _ := signer.Sign(token.TypeJWT, token.Claims{
		Issuer:    "kisee.example.com",
		Subject:   "ada",
		ExpiresAt: time.Now().Add(time.Hour),
	})

	ring := token.KeyRing{Current: key}
	verifier := token.NewVerifier(ring.KeySet(), token.WithIssuer("kisee.example.com"))
	claims, err := verifier.Verify(context.Background(), raw)
	fmt.Println(claims.Subject, err)
	// Output: ada <nil>
}

// A verifier refuses a token of another type: a refresh token is not an
// access token.
func ExampleWithTypes() {
	key, _ := token.GenerateKey(token.EdDSA)
	refresh, _ := token.NewSigner(key).Sign(token.TypeRefresh, token.Claims{Subject: "kisee-ada", ExpiresAt: time.Now().Add(time.Hour)})

	access := token.NewVerifier(token.NewStaticKeySet(key.Public()), token.WithTypes(token.TypeAccess))
	_, err := access.Verify(context.Background(), refresh)
	fmt.Println(err)
	// Output: wrong token type: "refresh+jwt" where at+jwt is expected
}

// A verifier that fetches the issuer's JWK Set: cached, fetched again when
// a token names a key id it does not hold (a rotation).
func ExampleNewRemoteKeySet() {
	key, _ := token.GenerateKey(token.ES256)
	ring := token.KeyRing{Current: key}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		doc, _ := ring.JWKS()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	defer jwks.Close()

	keys := token.NewRemoteKeySet(jwks.URL+"/jwks.json", token.RemoteOptions{})
	verifier := token.NewVerifier(keys, token.WithIssuer("https://auth.example.com"), token.WithTypes(token.TypeAccess))
	raw, _ := token.NewSigner(key).Sign(token.TypeAccess, token.Claims{
		Issuer: "https://auth.example.com", Subject: "kisee-ada", ExpiresAt: time.Now().Add(time.Minute),
	})
	claims, err := verifier.Verify(context.Background(), raw)
	fmt.Println(claims.Subject, err)
	// Output: kisee-ada <nil>
}

// Claims beyond the registered ones are read with typed accessors.
func ExampleClaims_Strings() {
	var c token.Claims
	if err := json.Unmarshal([]byte(`{"sub":"kisee-ada","groups":["staff","articles.writers"],"idp":"kisee"}`), &c); err != nil {
		panic(err)
	}
	groups, ok := c.Strings("groups")
	idp, _ := c.String("idp")
	fmt.Println(c.Subject, groups, ok, idp)
	// Output: kisee-ada [staff articles.writers] true kisee
}

// Public keys travel as PEM (a service pinning them) or as a JWK Set (an
// issuer's /jwks.json); the key id is the RFC 7638 thumbprint either way.
func ExampleParsePublicKeyPEM() {
	key, _ := token.GenerateKey(token.EdDSA)
	pemBytes, _ := key.Public().MarshalPEM()
	pub, err := token.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		panic(err)
	}
	jwks, _ := token.MarshalJWKS(pub)
	fromJWKS, _ := token.ParseJWKS(jwks)
	fmt.Println(pub.Algorithm(), pub.KeyID() == key.KeyID(), fromJWKS[0].Equal(pub))
	// Output: EdDSA true true
}
