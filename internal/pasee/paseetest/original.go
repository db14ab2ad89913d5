package paseetest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// OriginalToken signs claims exactly as the original (Python) Kisee and
// Pasee did (PyJWT, algorithm "ES256", a secp256k1 key): header
// {"alg":"ES256","typ":"JWT"}, no kid, a raw r||s signature over SHA-256.
func OriginalToken(key *secp256k1.PrivateKey, claims map[string]any) string {
	b64 := base64.RawURLEncoding
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err) // test claims are plain values
	}
	input := b64.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + b64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig := ecdsa.Sign(key, digest[:])
	r, s := sig.R(), sig.S()
	rb, sb := r.Bytes(), s.Bytes()
	return input + "." + b64.EncodeToString(append(rb[:], sb[:]...))
}
