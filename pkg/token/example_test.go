package token_test

import (
	"context"
	"fmt"
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
