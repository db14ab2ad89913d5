package token

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// b64 is the base64url encoding without padding used throughout JOSE.
var b64 = base64.RawURLEncoding

// secp256k1JWK is the JWK of a secp256k1 key (RFC 8812). jwx only knows
// this curve behind a build tag, so these keys are written by hand; the
// member order below is the RFC 7638 canonical order used for thumbprints.
type secp256k1JWK struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func thumbprint(k *PublicKey) (string, error) {
	if key, ok := k.raw.(*secp256k1.PublicKey); ok {
		x, y := secp256k1Coordinates(key)
		canonical, err := json.Marshal(secp256k1JWK{Crv: "secp256k1", Kty: "EC", X: b64.EncodeToString(x), Y: b64.EncodeToString(y)})
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(canonical)
		return b64.EncodeToString(sum[:]), nil
	}
	j, err := jwk.FromRaw(k.raw)
	if err != nil {
		return "", fmt.Errorf("key to JWK: %w", err)
	}
	sum, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("JWK thumbprint: %w", err)
	}
	return b64.EncodeToString(sum), nil
}

// MarshalJSON encodes k as a JWK (RFC 7517) with "use": "sig", "alg" and "kid".
func (k *PublicKey) MarshalJSON() ([]byte, error) {
	if key, ok := k.raw.(*secp256k1.PublicKey); ok {
		x, y := secp256k1Coordinates(key)
		return json.Marshal(map[string]string{
			"kty": "EC", "crv": "secp256k1", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y),
			"use": "sig", "alg": string(k.alg), "kid": k.kid,
		})
	}
	j, err := jwk.FromRaw(k.raw)
	if err != nil {
		return nil, fmt.Errorf("key to JWK: %w", err)
	}
	for name, value := range map[string]string{jwk.KeyUsageKey: "sig", jwk.AlgorithmKey: string(k.alg), jwk.KeyIDKey: k.kid} {
		if err := j.Set(name, value); err != nil {
			return nil, fmt.Errorf("set JWK %s: %w", name, err)
		}
	}
	return json.Marshal(j)
}

// JWKS is a JSON Web Key Set (RFC 7517 section 5).
type JWKS struct {
	Keys []*PublicKey `json:"keys"`
}

// MarshalJWKS encodes keys as a JWK Set, skipping duplicates (same kid).
func MarshalJWKS(keys ...*PublicKey) ([]byte, error) {
	set := JWKS{Keys: make([]*PublicKey, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == nil || seen[k.kid] {
			continue
		}
		seen[k.kid] = true
		set.Keys = append(set.Keys, k)
	}
	return json.Marshal(set)
}

// ParseJWKS reads the signature keys of a JWK Set. Keys that are not for
// signatures ("use" other than "sig"), symmetric keys and keys of types the
// suite does not support are skipped; a set with no usable key is an error.
func ParseJWKS(data []byte) ([]*PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWK Set: %w", err)
	}
	var keys []*PublicKey
	var skipped []error
	for i, raw := range set.Keys {
		k, err := ParseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("JWK Set has no usable signature key: %w", errors.Join(skipped...))
		}
		return nil, errors.New("JWK Set has no keys")
	}
	return keys, nil
}

// ParseJWK reads one public signature key from its JWK form. The algorithm
// is derived from the key type; a conflicting "alg" member is refused.
func ParseJWK(data []byte) (*PublicKey, error) {
	var head struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		X   string `json:"x"`
		Y   string `json:"y"`
		D   string `json:"d"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&head); err != nil {
		return nil, fmt.Errorf("parse JWK: %w", err)
	}
	if head.Use != "" && head.Use != "sig" {
		return nil, fmt.Errorf("JWK use %q is not \"sig\"", head.Use)
	}
	if head.D != "" {
		return nil, errors.New("JWK holds a private key; only public keys are accepted")
	}
	var k *PublicKey
	var err error
	switch {
	case head.Kty == "oct":
		return nil, errors.New("symmetric JWK refused: HMAC is not accepted")
	case head.Kty == "EC" && head.Crv == "secp256k1":
		x, errX := b64.DecodeString(head.X)
		y, errY := b64.DecodeString(head.Y)
		if errX != nil || errY != nil {
			return nil, errors.New("secp256k1 JWK: x and y must be base64url")
		}
		var pub *secp256k1.PublicKey
		if pub, err = secp256k1FromCoordinates(x, y); err == nil {
			k, err = NewPublicKey(pub)
		}
	default:
		var j jwk.Key
		if j, err = jwk.ParseKey(data); err != nil {
			return nil, fmt.Errorf("parse JWK: %w", err)
		}
		var raw any
		if err = j.Raw(&raw); err != nil {
			return nil, fmt.Errorf("JWK to key: %w", err)
		}
		k, err = NewPublicKey(raw)
	}
	if err != nil {
		return nil, err
	}
	if head.Alg != "" && Algorithm(head.Alg) != k.alg && !(k.alg == ES256K && head.Alg == string(ES256)) {
		return nil, fmt.Errorf("JWK alg %q does not match its %s key", head.Alg, k.alg)
	}
	return k, nil
}
