package token

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePrivateKeyPEMDerivesAlgorithm(t *testing.T) {
	for file, want := range map[string]Algorithm{
		"p256.pem":            ES256,
		"p384.pem":            ES384,
		"secp256k1.pem":       ES256K,
		"secp256k1-pkcs8.pem": ES256K,
		"ed25519.pem":         EdDSA,
		"rsa2048.pem":         RS256,
		"rsa2048-pkcs1.pem":   RS256,
	} {
		t.Run(file, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM(readFile(t, file))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if k.Algorithm() != want {
				t.Errorf("alg = %s, want %s", k.Algorithm(), want)
			}
			if len(k.KeyID()) != 43 {
				t.Errorf("kid %q is not a base64url SHA-256 thumbprint", k.KeyID())
			}
		})
	}
}

func TestParseKeyRefusals(t *testing.T) {
	for file, want := range map[string]string{
		"rsa1024.pem": "at least 2048 bits",
		"p521.pem":    "unsupported elliptic curve",
		"p256.pub":    "found a public key",
	} {
		_, err := ParsePrivateKeyPEM(readFile(t, file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", file, err, want)
		}
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN PUBLIC KEY-----!!!-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----AAAA-----END PRIVATE KEY-----"} {
		if _, err := ParsePublicKeyPEM([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeyPEM(%q) accepted", bad)
		}
	}
}

func TestPublicKeyMatchesPrivateKey(t *testing.T) {
	for _, name := range []string{"p256", "secp256k1", "ed25519", "rsa2048"} {
		priv, err := ParsePrivateKeyPEM(readFile(t, name+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParsePublicKeyPEM(readFile(t, name+".pub"))
		if err != nil {
			t.Fatalf("%s.pub: %v", name, err)
		}
		if pub.KeyID() != priv.KeyID() || pub.Algorithm() != priv.Algorithm() {
			t.Errorf("%s: public key (%s, %s) differs from private key (%s, %s)", name, pub.KeyID(), pub.Algorithm(), priv.KeyID(), priv.Algorithm())
		}
	}
}

// The original documentation gives a secp256k1 key pair, the public half
// squeezed onto one line in Pasee's settings. Both must keep working.
func TestOriginalDocumentationKeys(t *testing.T) {
	priv, err := ParsePrivateKeyPEM([]byte(`
-----BEGIN EC PRIVATE KEY-----
MHQCAQEEIJJaLOWE+5qg6LNjYKOijMelSLYnexzLmTMvwG/Dy0r4oAcGBSuBBAAK
oUQDQgAEE/WCqajmhfppNUB2uekSxX976fcWA3bbdew8NkUtCoBigl9lWkqfnkF1
8H9fgG0gafPhGtub23+8Ldulvmf1lg==
-----END EC PRIVATE KEY-----`))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKeyPEM([]byte(`-----BEGIN PUBLIC KEY-----MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEE/WCqajmhfppNUB2uekSxX976fcWA3bbdew8NkUtCoBigl9lWkqfnkF18H9fgG0gafPhGtub23+8Ldulvmf1lg==-----END PUBLIC KEY-----`))
	if err != nil {
		t.Fatal(err)
	}
	if priv.Algorithm() != ES256K || !pub.Equal(priv.Public()) {
		t.Fatalf("documentation keys: alg %s, same key %v", priv.Algorithm(), pub.Equal(priv.Public()))
	}
}

func TestGenerateMarshalParseRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{ES256, ES384, ES256K, EdDSA, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			privPEM, err := k.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			pubPEM, err := k.Public().MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ParsePrivateKeyPEM(privPEM)
			if err != nil {
				t.Fatalf("parse own PEM: %v", err)
			}
			pub, err := ParsePublicKeyPEM(pubPEM)
			if err != nil {
				t.Fatalf("parse own public PEM: %v", err)
			}
			if k2.KeyID() != k.KeyID() || pub.KeyID() != k.KeyID() || k2.Algorithm() != alg {
				t.Fatalf("round trip changed the key")
			}
			// A token signed before the round trip verifies after it.
			tok, err := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewVerifier(NewStaticKeySet(pub)).Verify(t.Context(), tok); err != nil {
				t.Fatalf("verify after round trip: %v", err)
			}
		})
	}
}

// RFC 7638 section 3.1 gives the thumbprint of an RSA key.
func TestThumbprintRFC7638Vector(t *testing.T) {
	k, err := ParseJWK([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; k.KeyID() != want {
		t.Fatalf("kid = %s, want %s", k.KeyID(), want)
	}
}

// A signature made by OpenSSL with the secp256k1 test key verifies with our
// ES256K code, and ours with a textbook ECDSA written here over math/big:
// three implementations agree.
func TestES256KInteropWithOpenSSL(t *testing.T) {
	k, err := ParsePrivateKeyPEM(readFile(t, "secp256k1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var der struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(readFile(t, "es256k-openssl.sig"), &der); err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	der.R.FillBytes(sig[:32])
	der.S.FillBytes(sig[32:])
	input := readFile(t, "es256k-input.txt")
	if err := verifySignature(k.Public(), input, sig); err != nil {
		t.Fatalf("OpenSSL signature refused: %v", err)
	}
	input[0] ^= 1
	if err := verifySignature(k.Public(), input, sig); err == nil {
		t.Fatal("signature accepted over altered input")
	}
	input[0] ^= 1

	ours, err := sign(k, input)
	if err != nil {
		t.Fatal(err)
	}
	u := k.Public().Raw().(*secp256k1.PublicKey).SerializeUncompressed()
	sum := sha256.Sum256(input)
	if !textbookVerify(new(big.Int).SetBytes(u[1:33]), new(big.Int).SetBytes(u[33:]), sum[:], new(big.Int).SetBytes(ours[:32]), new(big.Int).SetBytes(ours[32:])) {
		t.Fatal("our ES256K signature does not verify with textbook ECDSA")
	}
	if textbookVerify(new(big.Int).SetBytes(u[1:33]), new(big.Int).SetBytes(u[33:]), sum[:], new(big.Int).SetBytes(ours[:32]), big.NewInt(12345)) {
		t.Fatal("textbook ECDSA accepts anything: the cross-check proves nothing")
	}
}

// secp256k1 domain parameters (SEC 2, section 2.4.1).
var (
	secpP, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)
	secpN, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	secpGx, _ = new(big.Int).SetString("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 16)
	secpGy, _ = new(big.Int).SetString("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8", 16)
)

// textbookVerify is ECDSA verification in affine coordinates over math/big
// (curve y² = x³ + 7), independent of decred's optimised code.
func textbookVerify(qx, qy *big.Int, hash []byte, r, s *big.Int) bool {
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(secpN) >= 0 || s.Cmp(secpN) >= 0 {
		return false
	}
	w := new(big.Int).ModInverse(s, secpN)
	u1 := new(big.Int).Mod(new(big.Int).Mul(new(big.Int).SetBytes(hash), w), secpN)
	u2 := new(big.Int).Mod(new(big.Int).Mul(r, w), secpN)
	x1, y1 := scalarMult(secpGx, secpGy, u1)
	x2, y2 := scalarMult(qx, qy, u2)
	x, _ := pointAdd(x1, y1, x2, y2)
	return x != nil && new(big.Int).Mod(x, secpN).Cmp(r) == 0
}

// pointAdd adds two affine points; nil coordinates are the point at infinity.
func pointAdd(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	if x1 == nil {
		return x2, y2
	}
	if x2 == nil {
		return x1, y1
	}
	var l *big.Int
	if x1.Cmp(x2) == 0 {
		if new(big.Int).Mod(new(big.Int).Add(y1, y2), secpP).Sign() == 0 {
			return nil, nil
		}
		num := new(big.Int).Mul(big.NewInt(3), new(big.Int).Mul(x1, x1))
		den := new(big.Int).ModInverse(new(big.Int).Mul(big.NewInt(2), y1), secpP)
		l = new(big.Int).Mod(new(big.Int).Mul(num, den), secpP)
	} else {
		num := new(big.Int).Sub(y2, y1)
		den := new(big.Int).ModInverse(new(big.Int).Mod(new(big.Int).Sub(x2, x1), secpP), secpP)
		l = new(big.Int).Mod(new(big.Int).Mul(num, den), secpP)
	}
	x3 := new(big.Int).Mod(new(big.Int).Sub(new(big.Int).Sub(new(big.Int).Mul(l, l), x1), x2), secpP)
	y3 := new(big.Int).Mod(new(big.Int).Sub(new(big.Int).Mul(l, new(big.Int).Sub(x1, x3)), y1), secpP)
	return x3, y3
}

func scalarMult(x, y, k *big.Int) (*big.Int, *big.Int) {
	var rx, ry *big.Int
	for i := k.BitLen() - 1; i >= 0; i-- {
		rx, ry = pointAdd(rx, ry, rx, ry)
		if k.Bit(i) == 1 {
			rx, ry = pointAdd(rx, ry, x, y)
		}
	}
	return rx, ry
}

func TestJWKSRoundTrip(t *testing.T) {
	var keys []*PublicKey
	for _, alg := range []Algorithm{ES256, ES384, ES256K, EdDSA, RS256} {
		k, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Public())
	}
	doc, err := MarshalJWKS(append(keys, keys[0])...)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != len(keys) {
		t.Fatalf("JWKS has %d keys, want %d (duplicates dropped)", len(raw.Keys), len(keys))
	}
	for i, k := range raw.Keys {
		if k["use"] != "sig" || k["alg"] != string(keys[i].Algorithm()) || k["kid"] != keys[i].KeyID() {
			t.Errorf("key %d: use=%v alg=%v kid=%v", i, k["use"], k["alg"], k["kid"])
		}
		if _, private := k["d"]; private {
			t.Errorf("key %d: JWKS leaks a private member", i)
		}
	}
	parsed, err := ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if !parsed[i].Equal(keys[i]) || parsed[i].Algorithm() != keys[i].Algorithm() {
			t.Errorf("key %d changed through JWKS", i)
		}
	}
}

func TestParseJWKSRefusals(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":      `{`,
		"no keys":       `{"keys":[]}`,
		"hmac only":     `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		"encryption":    `{"keys":[{"kty":"EC","crv":"P-256","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		"private":       `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`,
		"alg conflicts": `{"keys":[{"kty":"EC","crv":"P-256","alg":"HS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
	} {
		if _, err := ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A usable key next to unusable ones is kept.
	keys, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	if err != nil || len(keys) != 1 || keys[0].Algorithm() != ES256 {
		t.Fatalf("mixed set: %v, %d keys", err, len(keys))
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "key.pem")
	var wg sync.WaitGroup
	kids := make([]string, 8)
	created := make([]bool, 8)
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, c, err := LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i], created[i] = k.KeyID(), c
		}()
	}
	wg.Wait()
	n := 0
	for i := range kids {
		if kids[i] != kids[0] {
			t.Fatal("concurrent starts ended with different keys")
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers created the key, want 1", n)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	k, c, err := LoadOrCreateKeyFile(path)
	if err != nil || c || k.KeyID() != kids[0] {
		t.Fatalf("reload: %v created=%v", err, c)
	}
}

func TestParsePublicKeysPEMNamesTheBadKey(t *testing.T) {
	good := string(readFile(t, "p256.pub"))
	keys, err := ParsePublicKeysPEM([]string{good, string(readFile(t, "ed25519.pub"))})
	if err != nil || len(keys) != 2 || keys[1].Algorithm() != EdDSA {
		t.Fatalf("%v, %d keys", err, len(keys))
	}
	if _, err := ParsePublicKeysPEM([]string{good, "nope"}); err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
		t.Fatalf("err = %v, want it to name key [1]", err)
	}
}

// An ECDSA signature's R and S are fixed-width in a JWS whatever their
// value: a short R or S (leading zero bytes, one in 256 signatures) is
// padded back, a high bit survives ASN.1's sign byte, and anything that is
// not exactly a SEQUENCE of two non-negative INTEGERs that fit is refused.
func TestASN1ToRS(t *testing.T) {
	full := func(first byte) []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(i + 1)
		}
		b[0] = first
		return b
	}
	short := full(0)
	short[1] = 0
	for _, c := range []struct {
		name string
		r, s []byte
	}{
		{"plain", full(0x11), full(0x22)},
		{"high bits", full(0xff), full(0x80)},
		{"short r", short, full(0x7f)},
		{"short s", full(0x01), short},
		{"zero", make([]byte, 32), full(0x42)},
	} {
		der, err := rsToASN1(c.r, c.s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := asn1ToRS(der, 32)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := append(append([]byte{}, c.r...), c.s...); string(got) != string(want) {
			t.Errorf("%s: got %x, want %x", c.name, got, want)
		}
	}
	good, _ := rsToASN1(full(1), full(2))
	tooLong, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)})
	negative, _ := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(-5), big.NewInt(1)})
	three, _ := asn1.Marshal(struct{ R, S, T *big.Int }{big.NewInt(1), big.NewInt(2), big.NewInt(3)})
	for name, der := range map[string][]byte{
		"trailing data": append(append([]byte{}, good...), 0),
		"truncated":     good[:len(good)-1],
		"too long":      tooLong,
		"negative":      negative,
		"three":         three,
		"empty":         nil,
	} {
		if out, err := asn1ToRS(der, 32); err == nil {
			t.Errorf("%s: accepted as %x", name, out)
		}
	}
}
