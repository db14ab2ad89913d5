package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"
)

func benchClaims() Claims {
	c := Claims{Issuer: "pasee.example.com", Subject: "kisee-ada", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), ID: "0123456789abcdef0123456789abcdef"}
	c.Set("groups", []string{"articles.writers", "staff"})
	c.Set("idp", "kisee")
	return c
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []Algorithm{ES256, ES256K, EdDSA, RS256} {
		b.Run(string(alg), func(b *testing.B) {
			s := NewSigner(mustKey(b, alg))
			c := benchClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(TypeAccess, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []Algorithm{ES256, ES256K, EdDSA, RS256} {
		b.Run(string(alg), func(b *testing.B) {
			k := mustKey(b, alg)
			tok, _ := NewSigner(k).Sign(TypeAccess, benchClaims())
			v := NewVerifier(NewStaticKeySet(k.Public()), WithTypes(TypeAccess), WithIssuer("pasee.example.com"))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawES256Verify is the bound BenchmarkVerify/ES256 is measured
// against: one SHA-256 and one P-256 ECDSA verification, nothing else.
func BenchmarkRawES256Verify(b *testing.B) {
	k := mustKey(b, ES256)
	tok, _ := NewSigner(k).Sign(TypeAccess, benchClaims())
	digest := sha256.Sum256([]byte(tok[:len(tok)-87]))
	sig, _ := ecdsa.SignASN1(rand.Reader, k.raw.(*ecdsa.PrivateKey), digest[:])
	pub := k.Public().Raw().(*ecdsa.PublicKey)
	input := []byte(tok[:len(tok)-87])
	for b.Loop() {
		d := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkClaimsJSON is the encoding a token costs besides its signature:
// the claims of an access token written and read back.
func BenchmarkClaimsJSON(b *testing.B) {
	c := benchClaims()
	c.Set("sid", "0123456789abcdef0123456789abcdef")
	c.Set("email", "ada@example.com")
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, _ := c.MarshalJSON()
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Claims
			if err := c.UnmarshalJSON(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
