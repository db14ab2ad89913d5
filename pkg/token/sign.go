package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Token types written in the "typ" header. Each verifier states which it
// accepts, so that one kind of token is refused where another is expected
// (RFC 8725 section 3.11).
const (
	TypeJWT     = "JWT"         // a Kisee identity token
	TypeAccess  = "at+jwt"      // a Pasee access token (RFC 9068)
	TypeRefresh = "refresh+jwt" // a Pasee refresh token
	TypeReset   = "reset+jwt"   // a Kisee password-reset token
)

// header is the protected JOSE header the suite writes: nothing else, so
// nothing a verifier could be tricked into following (jku, x5u, jwk...).
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// Signer signs tokens with one private key. It is safe for concurrent use.
type Signer struct {
	key       *PrivateKey
	headerAlg string
	headers   sync.Map // typ → base64url-encoded header, computed once
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// WithLegacyES256K makes a secp256k1 signer write "ES256" in the header, as
// the original Python services did, so that their verifiers accept the
// tokens. It has no effect on other keys.
func WithLegacyES256K(enabled bool) SignerOption {
	return func(s *Signer) {
		if enabled && s.key.Algorithm() == ES256K {
			s.headerAlg = string(ES256)
		}
	}
}

// NewSigner returns a Signer for key.
func NewSigner(key *PrivateKey, opts ...SignerOption) *Signer {
	s := &Signer{key: key, headerAlg: string(key.Algorithm())}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Key returns the signing key.
func (s *Signer) Key() *PrivateKey { return s.key }

// Sign returns the compact serialization of a JWS whose payload is the JSON
// encoding of claims and whose header carries alg, typ and kid.
func (s *Signer) Sign(typ string, claims any) (string, error) {
	h, err := s.header(typ)
	if err != nil {
		return "", err
	}
	bp := payloadBuffers.Get().(*[]byte)
	defer payloadBuffers.Put(bp)
	var p []byte
	switch c := claims.(type) {
	case Claims:
		p, err = c.appendJSON((*bp)[:0])
	case *Claims:
		p, err = c.appendJSON((*bp)[:0])
	default:
		p, err = json.Marshal(claims)
	}
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	if cap(p) <= maxPooledPayload {
		*bp = p
	}
	// One buffer for the signing input and the token (an ECDSA or EdDSA
	// signature fits in the 128 bytes to spare).
	input := make([]byte, 0, len(h)+1+b64.EncodedLen(len(p))+1+128)
	input = append(input, h...)
	input = append(input, '.')
	input = b64.AppendEncode(input, p)
	sig, err := sign(s.key, input)
	if err != nil {
		return "", err
	}
	out := append(input, '.')
	out = b64.AppendEncode(out, sig)
	return string(out), nil
}

// payloadBuffers hold the JSON payloads being signed; payloads above
// maxPooledPayload (a claims set with unusually many provider claims) are
// not kept.
var payloadBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledPayload = 8 << 10

// header returns the encoded header of tokens of type typ.
func (s *Signer) header(typ string) ([]byte, error) {
	if h, ok := s.headers.Load(typ); ok {
		return h.([]byte), nil
	}
	h, err := json.Marshal(header{Alg: s.headerAlg, Typ: typ, Kid: s.key.KeyID()})
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	enc := b64.AppendEncode(nil, h)
	s.headers.Store(typ, enc)
	return enc, nil
}

// sign computes the JWS signature of input with k's algorithm.
func sign(k *PrivateKey, input []byte) ([]byte, error) {
	switch key := k.raw.(type) {
	case *ecdsa.PrivateKey:
		size := (key.Curve.Params().BitSize + 7) / 8
		der, err := ecdsa.SignASN1(rand.Reader, key, digest(k.Algorithm(), input))
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", k.Algorithm(), err)
		}
		out, err := asn1ToRS(der, size)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", k.Algorithm(), err)
		}
		return out, nil
	case *secp256k1.PrivateKey:
		return signES256K(key, input), nil
	case ed25519.PrivateKey:
		return ed25519.Sign(key, input), nil
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest(RS256, input))
		if err != nil {
			return nil, fmt.Errorf("sign RS256: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k.raw)
}

// verifySignature checks sig over input with k. The algorithm is k's own.
func verifySignature(k *PublicKey, input, sig []byte) error {
	ok := false
	switch key := k.raw.(type) {
	case *ecdsa.PublicKey:
		size := (key.Curve.Params().BitSize + 7) / 8
		if len(sig) == 2*size {
			if der, err := rsToASN1(sig[:size], sig[size:]); err == nil {
				ok = ecdsa.VerifyASN1(key, digest(k.alg, input), der)
			}
		}
	case *secp256k1.PublicKey:
		ok = verifyES256K(key, input, sig)
	case ed25519.PublicKey:
		ok = len(sig) == ed25519.SignatureSize && ed25519.Verify(key, input, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(key, crypto.SHA256, digest(RS256, input), sig) == nil
	}
	if !ok {
		return errors.New("signature does not verify")
	}
	return nil
}

// rsToASN1 encodes the JWS form of an ECDSA signature (R || S, big-endian)
// as the ASN.1 SEQUENCE of two INTEGERs that crypto/ecdsa verifies,
// without going through math/big.
func rsToASN1(r, s []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addASN1Unsigned(b, r)
		addASN1Unsigned(b, s)
	})
	return b.Bytes()
}

// asn1ToRS decodes the ASN.1 SEQUENCE of two INTEGERs that crypto/ecdsa
// signs into the JWS form, R || S, each left-padded to size bytes, without
// going through math/big.
func asn1ToRS(der []byte, size int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!readASN1Unsigned(&seq, &r) || !readASN1Unsigned(&seq, &s) || !seq.Empty() ||
		len(r) > size || len(s) > size {
		return nil, errors.New("malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	copy(out[size-len(r):size], r)
	copy(out[2*size-len(s):], s)
	return out, nil
}

// readASN1Unsigned reads a non-negative INTEGER from s into v, without its
// leading zero bytes.
func readASN1Unsigned(s *cryptobyte.String, v *cryptobyte.String) bool {
	var b []byte
	if !s.ReadASN1Integer(&b) {
		return false
	}
	*v = b
	return true
}

// addASN1Unsigned adds the non-negative big-endian integer v as an INTEGER.
func addASN1Unsigned(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
		if len(v) > 0 && v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}

func digest(alg Algorithm, input []byte) []byte {
	if alg == ES384 {
		sum := sha512.Sum384(input)
		return sum[:]
	}
	sum := sha256.Sum256(input)
	return sum[:]
}
