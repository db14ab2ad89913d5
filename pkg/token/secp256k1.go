package token

import (
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// The standard library's x509 package does not know secp256k1, so its keys
// are read and written here with encoding/asn1, and signed and verified with
// decred's secp256k1 package (the curve implementation behind btcd and dcrd).

var (
	oidPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1      = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// sec1PrivateKey is the SEC 1 ECPrivateKey structure (RFC 5915).
type sec1PrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

type pkcs8PrivateKey struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

type pkixPublicKey struct {
	Algo      pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// parseSecp256k1SEC1 reads a SEC 1 secp256k1 private key; stdErr is the
// standard library's error, returned when the key is not secp256k1 either.
func parseSecp256k1SEC1(der []byte, stdErr error) (*secp256k1.PrivateKey, error) {
	var k sec1PrivateKey
	if rest, err := asn1.Unmarshal(der, &k); err != nil || len(rest) != 0 {
		return nil, stdErr
	}
	if !k.NamedCurveOID.Equal(oidSecp256k1) {
		return nil, stdErr
	}
	return secp256k1FromScalar(k.PrivateKey)
}

func parseSecp256k1PKCS8(der []byte, stdErr error) (*secp256k1.PrivateKey, error) {
	var p pkcs8PrivateKey
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return nil, stdErr
	}
	if !p.Algo.Algorithm.Equal(oidPublicKeyECDSA) {
		return nil, stdErr
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return nil, stdErr
	}
	var k sec1PrivateKey
	if _, err := asn1.Unmarshal(p.PrivateKey, &k); err != nil {
		return nil, fmt.Errorf("PKCS #8 secp256k1 key: %w", err)
	}
	return secp256k1FromScalar(k.PrivateKey)
}

func parseSecp256k1PKIX(der []byte, stdErr error) (*secp256k1.PublicKey, error) {
	var p pkixPublicKey
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return nil, stdErr
	}
	if !p.Algo.Algorithm.Equal(oidPublicKeyECDSA) {
		return nil, stdErr
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return nil, stdErr
	}
	pub, err := secp256k1.ParsePubKey(p.PublicKey.RightAlign())
	if err != nil {
		return nil, fmt.Errorf("secp256k1 public key: %w", err)
	}
	return pub, nil
}

func secp256k1FromScalar(b []byte) (*secp256k1.PrivateKey, error) {
	if len(b) == 0 || len(b) > 32 {
		return nil, errors.New("secp256k1 private key: invalid length")
	}
	var s secp256k1.ModNScalar
	padded := make([]byte, 32)
	copy(padded[32-len(b):], b)
	if overflow := s.SetByteSlice(padded); overflow || s.IsZero() {
		return nil, errors.New("secp256k1 private key: scalar out of range")
	}
	return secp256k1.NewPrivateKey(&s), nil
}

func marshalSecp256k1SEC1(k *secp256k1.PrivateKey) ([]byte, error) {
	pub := k.PubKey().SerializeUncompressed()
	der, err := asn1.Marshal(sec1PrivateKey{
		Version:       1,
		PrivateKey:    k.Serialize(),
		NamedCurveOID: oidSecp256k1,
		PublicKey:     asn1.BitString{Bytes: pub, BitLength: len(pub) * 8},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal secp256k1 key: %w", err)
	}
	return der, nil
}

func marshalSecp256k1PKIX(k *secp256k1.PublicKey) ([]byte, error) {
	params, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	pub := k.SerializeUncompressed()
	return asn1.Marshal(pkixPublicKey{
		Algo:      pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: pub, BitLength: len(pub) * 8},
	})
}

// signES256K signs the SHA-256 digest of input, returning R || S (64 bytes)
// as RFC 8812 requires. Signatures are deterministic (RFC 6979) and low-S.
func signES256K(k *secp256k1.PrivateKey, input []byte) []byte {
	digest := sha256.Sum256(input)
	sig := secpecdsa.Sign(k, digest[:])
	r, s := sig.R(), sig.S()
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out
}

func verifyES256K(k *secp256k1.PublicKey, input, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
		return false
	}
	digest := sha256.Sum256(input)
	return secpecdsa.NewSignature(&r, &s).Verify(digest[:], k)
}

// secp256k1Coordinates returns the affine coordinates of k as 32-byte
// big-endian values, for JWK export.
func secp256k1Coordinates(k *secp256k1.PublicKey) (x, y []byte) {
	u := k.SerializeUncompressed() // 0x04 || X || Y
	return u[1:33], u[33:65]
}

func secp256k1FromCoordinates(x, y []byte) (*secp256k1.PublicKey, error) {
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("secp256k1 JWK: x and y must be 32 bytes")
	}
	pub, err := secp256k1.ParsePubKey(append(append([]byte{0x04}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("secp256k1 JWK: %w", err)
	}
	return pub, nil
}
