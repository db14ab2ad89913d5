// Package token holds everything Kisee, Pasee and downstream services share
// about JSON Web Tokens: signing keys and the algorithm each implies, key
// identifiers (RFC 7638 thumbprints), signing, verification against a set of
// public keys (a fixed PEM list or a JWKS URL), and JWKS export.
//
// The algorithm of a token always comes from the key, never from the token
// header: a header that names another algorithm is refused, and so are
// "none" and every HMAC algorithm.
package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Algorithm is a JWS signature algorithm ("alg") supported by the suite.
type Algorithm string

// The algorithms the suite signs and verifies with. Each is implied by a key
// type: P-256 → ES256, P-384 → ES384, secp256k1 → ES256K, Ed25519 → EdDSA,
// RSA (2048 bits or more) → RS256.
const (
	ES256  Algorithm = "ES256"
	ES384  Algorithm = "ES384"
	ES256K Algorithm = "ES256K"
	EdDSA  Algorithm = "EdDSA"
	RS256  Algorithm = "RS256"
)

// MinRSABits is the smallest RSA modulus accepted, for signing or verifying.
const MinRSABits = 2048

// ParseAlgorithm returns the Algorithm named s, or an error for any
// algorithm the suite does not support (including "none" and HMAC).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case ES256, ES384, ES256K, EdDSA, RS256:
		return a, nil
	}
	return "", fmt.Errorf("unsupported algorithm %q (supported: ES256, ES384, ES256K, EdDSA, RS256)", s)
}

// PublicKey is a verification key with its algorithm and key id.
// It is immutable and safe for concurrent use.
type PublicKey struct {
	raw any // *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey or *secp256k1.PublicKey
	alg Algorithm
	kid string
}

// Algorithm returns the signature algorithm implied by the key type.
func (k *PublicKey) Algorithm() Algorithm { return k.alg }

// KeyID returns the RFC 7638 SHA-256 thumbprint of the key, base64url encoded.
func (k *PublicKey) KeyID() string { return k.kid }

// Raw returns the underlying key: *ecdsa.PublicKey, ed25519.PublicKey,
// *rsa.PublicKey or, for ES256K, *secp256k1.PublicKey.
func (k *PublicKey) Raw() any { return k.raw }

// Equal reports whether k and o are the same key.
func (k *PublicKey) Equal(o *PublicKey) bool { return o != nil && k.kid == o.kid }

// PrivateKey is a signing key. It is immutable and safe for concurrent use.
type PrivateKey struct {
	raw    any // *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey or *secp256k1.PrivateKey
	public *PublicKey
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// Algorithm returns the signature algorithm implied by the key type.
func (k *PrivateKey) Algorithm() Algorithm { return k.public.alg }

// KeyID returns the key id of the public half of k.
func (k *PrivateKey) KeyID() string { return k.public.kid }

// NewPublicKey wraps a crypto public key, checking that its type and size
// are supported, and computes its algorithm and key id.
func NewPublicKey(raw any) (*PublicKey, error) {
	var alg Algorithm
	switch key := raw.(type) {
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			alg = ES256
		case elliptic.P384():
			alg = ES384
		default:
			return nil, fmt.Errorf("unsupported elliptic curve %s (supported: P-256, P-384, secp256k1)", key.Curve.Params().Name)
		}
		// The point must be on the curve, its coordinates in range: a JWK
		// whose "y" is 33 bytes long makes the thumbprint panic (in jwx), so
		// a provider's /jwks.json could turn every login at Pasee into a
		// 500. PEM keys are checked by x509 already; JWKs are not.
		if _, err := key.ECDH(); err != nil {
			return nil, fmt.Errorf("invalid %s public key: %v", alg, err)
		}
	case ed25519.PublicKey:
		if len(key) != ed25519.PublicKeySize {
			return nil, errors.New("invalid Ed25519 public key size")
		}
		alg = EdDSA
	case *rsa.PublicKey:
		if key.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits refused: at least %d bits are required", key.N.BitLen(), MinRSABits)
		}
		alg = RS256
	case *secp256k1.PublicKey:
		alg = ES256K
	default:
		return nil, fmt.Errorf("unsupported public key type %T", raw)
	}
	k := &PublicKey{raw: raw, alg: alg}
	kid, err := thumbprint(k)
	if err != nil {
		return nil, err
	}
	k.kid = kid
	return k, nil
}

// NewPrivateKey wraps a crypto private key, checking that its type and size
// are supported.
func NewPrivateKey(raw any) (*PrivateKey, error) {
	var pub any
	switch key := raw.(type) {
	case *ecdsa.PrivateKey:
		pub = &key.PublicKey
	case ed25519.PrivateKey:
		pub = key.Public()
	case *rsa.PrivateKey:
		pub = &key.PublicKey
	case *secp256k1.PrivateKey:
		pub = key.PubKey()
	default:
		return nil, fmt.Errorf("unsupported private key type %T", raw)
	}
	p, err := NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{raw: raw, public: p}, nil
}

// GenerateKey creates a fresh private key for alg. ES256 (P-256) is the
// suite's default for generated keys.
func GenerateKey(alg Algorithm) (*PrivateKey, error) {
	var raw any
	var err error
	switch alg {
	case ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ES256K:
		raw, err = secp256k1.GeneratePrivateKey()
	case EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		raw, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return nil, fmt.Errorf("cannot generate a key for algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return NewPrivateKey(raw)
}

// ParsePrivateKeyPEM reads a private key from PEM: "EC PRIVATE KEY" (SEC 1,
// including secp256k1 as written by `openssl ecparam -name secp256k1`),
// "PRIVATE KEY" (PKCS #8) or "RSA PRIVATE KEY" (PKCS #1).
// A PEM block squeezed onto one line, as in the original documentation, is accepted.
func ParsePrivateKeyPEM(data []byte) (*PrivateKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	var raw any
	switch block.Type {
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			raw, err = parseSecp256k1SEC1(block.Bytes, err)
		}
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			raw, err = parseSecp256k1PKCS8(block.Bytes, err)
		}
	case "RSA PRIVATE KEY":
		raw, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, errors.New("expected a private key, found a public key")
	default:
		return nil, fmt.Errorf("unsupported PEM block %q for a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	return NewPrivateKey(raw)
}

// ParsePublicKeyPEM reads a public key from PEM: "PUBLIC KEY" (X.509
// SubjectPublicKeyInfo, including secp256k1) or "RSA PUBLIC KEY" (PKCS #1).
// A private key PEM is accepted too and its public half returned.
func ParsePublicKeyPEM(data []byte) (*PublicKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	var raw any
	switch block.Type {
	case "PUBLIC KEY":
		raw, err = x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			raw, err = parseSecp256k1PKIX(block.Bytes, err)
		}
	case "RSA PUBLIC KEY":
		raw, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "EC PRIVATE KEY", "PRIVATE KEY", "RSA PRIVATE KEY":
		priv, perr := ParsePrivateKeyPEM(data)
		if perr != nil {
			return nil, perr
		}
		return priv.Public(), nil
	default:
		return nil, fmt.Errorf("unsupported PEM block %q for a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	return NewPublicKey(raw)
}

// MarshalPEM encodes k as PEM: SEC 1 "EC PRIVATE KEY" for elliptic-curve
// keys (the form openssl and the original services use), PKCS #8 otherwise.
func (k *PrivateKey) MarshalPEM() ([]byte, error) {
	var block *pem.Block
	switch key := k.raw.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("marshal EC key: %w", err)
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case *secp256k1.PrivateKey:
		der, err := marshalSecp256k1SEC1(key)
		if err != nil {
			return nil, err
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("marshal private key: %w", err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block), nil
}

// MarshalPEM encodes k as a PEM "PUBLIC KEY" (X.509 SubjectPublicKeyInfo).
func (k *PublicKey) MarshalPEM() ([]byte, error) {
	var der []byte
	var err error
	if key, ok := k.raw.(*secp256k1.PublicKey); ok {
		der, err = marshalSecp256k1PKIX(key)
	} else {
		der, err = x509.MarshalPKIXPublicKey(k.raw)
	}
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeysPEM reads a list of PEM public keys (a key rotation's, as
// settings give them); an error names the index of the key at fault.
func ParsePublicKeysPEM(pems []string) ([]*PublicKey, error) {
	keys := make([]*PublicKey, 0, len(pems))
	for i, p := range pems {
		k, err := ParsePublicKeyPEM([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
