package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	. "github.com/kisee-pasee/suite/pkg/verify/internal/verifytest"
)

// BenchmarkMiddlewareVerify measures a request through Middleware and
// RequireGroupTree (header parsing, signature, claims, identity, context)
// against its bound in the same run: one SHA-256 and one P-256 ECDSA
// verification of the same token, nothing else. RawES256Verify and
// Middleware measure each alone; Paired times both side by side in every
// iteration and reports their ratio as "x-raw", which holds even when the
// machine's load changes during the run.
func BenchmarkMiddlewareVerify(b *testing.B) {
	const iss = "https://auth.example.com"
	key := MustKey(b, token.ES256)
	claims := AccessClaims(iss, "kisee-alice", time.Now(), "articles.writers", "staff")
	claims.Set("email", "alice@example.com")
	raw := Sign(b, key, token.TypeAccess, claims)

	dot := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil || len(sig) != 64 {
		b.Fatalf("signature: %v (%d bytes)", err, len(sig))
	}
	der := asn1Signature(b, sig)
	pub := key.Public().Raw().(*ecdsa.PublicKey)

	v, err := verify.New(context.Background(), verify.Options{KeySet: token.NewStaticKeySet(key.Public()), Issuer: iss})
	if err != nil {
		b.Fatal(err)
	}
	e := verify.Middleware(v)(verify.RequireGroupTree("articles")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	req := httptest.NewRequest(http.MethodGet, "/articles", nil)
	req.Header.Set("Authorization", "Bearer "+raw)
	w := &discard{header: http.Header{}}

	b.Run("RawES256Verify", func(b *testing.B) {
		for b.Loop() {
			d := sha256.Sum256(input)
			if !ecdsa.VerifyASN1(pub, d[:], der) {
				b.Fatal("raw verification failed")
			}
		}
	})
	b.Run("Middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(w.header)
			w.code = 0
			e.ServeHTTP(w, req)
			if w.code != http.StatusNoContent {
				b.Fatalf("status %d", w.code)
			}
		}
	})
	// Paired runs one request and one raw verification per iteration,
	// timed apart, so that the ratio holds on a machine whose load changes
	// between the two sub-benchmarks above.
	b.Run("Paired", func(b *testing.B) {
		var mw, raw time.Duration
		n := 0
		for b.Loop() {
			clear(w.header)
			w.code = 0
			t0 := time.Now()
			e.ServeHTTP(w, req)
			t1 := time.Now()
			d := sha256.Sum256(input)
			ok := ecdsa.VerifyASN1(pub, d[:], der)
			t2 := time.Now()
			if w.code != http.StatusNoContent || !ok {
				b.Fatalf("status %d, raw %v", w.code, ok)
			}
			mw += t1.Sub(t0)
			raw += t2.Sub(t1)
			n++
		}
		b.ReportMetric(float64(mw.Nanoseconds())/float64(n), "middleware-ns/op")
		b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/op")
		b.ReportMetric(float64(mw)/float64(raw), "x-raw")
	})
}

// asn1Signature converts a JWS ECDSA signature (r || s) to the ASN.1 form
// ecdsa.VerifyASN1 reads.
func asn1Signature(b *testing.B, sig []byte) []byte {
	var bld cryptobyte.Builder
	bld.AddASN1(asn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddASN1BigInt(new(big.Int).SetBytes(sig[:32]))
		c.AddASN1BigInt(new(big.Int).SetBytes(sig[32:]))
	})
	der, err := bld.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// discard is a ResponseWriter that keeps only the status, so that the
// benchmark measures the middleware, not a recorder.
type discard struct {
	header http.Header
	code   int
}

func (d *discard) Header() http.Header { return d.header }

func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(p), nil
}

func (d *discard) WriteHeader(code int) { d.code = code }
