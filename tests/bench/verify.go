package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/pkg/verify"
	"github.com/kisee-pasee/suite/pkg/verify/echoverify"
)

// VerifyResult is scenario 5: how fast a downstream service checks Pasee
// access tokens, on all cores, against the raw signature check.
type VerifyResult struct {
	// Raw is SHA-256 and P-256 ECDSA verification of the token, nothing
	// else (the bound). Token is pkg/token's Verifier, Library
	// pkg/verify's Verifier, Middleware pkg/verify/echoverify's middleware
	// around a handler answering 204, driven without a network. Each is
	// the best of 3 interleaved rounds.
	Raw, Token, Library, Middleware Rate
	// TokenBytes is the size of the access token verified.
	TokenBytes int
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h      http.Header
	status int
}

// Header implements http.ResponseWriter.
func (w *discardWriter) Header() http.Header { return w.h }

// Write implements http.ResponseWriter, discarding b.
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// WriteHeader implements http.ResponseWriter, keeping the status.
func (w *discardWriter) WriteHeader(status int) { w.status = status }

// RunVerify measures scenario 5 with an access token Pasee at paseeURL
// issued, its keys fetched from Pasee's /jwks.json.
func RunVerify(ctx context.Context, plan Plan, paseeURL, access string, d time.Duration) (VerifyResult, error) {
	logf("scenario 5: downstream verification of a Pasee access token (%d bytes)", len(access))
	r := VerifyResult{TokenBytes: len(access)}
	client := NewClient(1)
	defer client.Close()
	jwks, err := client.Expect(ctx, 200, "GET", paseeURL+"/jwks.json", nil, "")
	if err != nil {
		return r, err
	}
	keys, err := token.ParseJWKS(jwks)
	if err != nil || len(keys) == 0 {
		return r, fmt.Errorf("pasee JWKS: %v", err)
	}
	pub, ok := keys[0].Raw().(*ecdsa.PublicKey)
	if !ok {
		return r, fmt.Errorf("pasee key is %T, not ES256", keys[0].Raw())
	}
	dot := strings.LastIndexByte(access, '.')
	input := []byte(access[:dot])
	rawSig, err := base64.RawURLEncoding.DecodeString(access[dot+1:])
	if err != nil || len(rawSig) != 64 {
		return r, fmt.Errorf("access token signature: %v", err)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rawSig[:32]), new(big.Int).SetBytes(rawSig[32:])})
	if err != nil {
		return r, err
	}
	raw := func() error {
		h := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			return fmt.Errorf("raw verification failed")
		}
		return nil
	}
	tv := token.NewVerifier(token.NewStaticKeySet(keys...), token.WithTypes(token.TypeAccess), token.WithIssuer(paseeURL))
	tokenVerify := func() error {
		_, err := tv.Verify(ctx, access)
		return err
	}
	v, err := verify.New(ctx, verify.Options{JWKSURL: paseeURL + "/jwks.json", Issuer: paseeURL, Prefetch: true})
	if err != nil {
		return r, err
	}
	library := func() error {
		_, err := v.Verify(ctx, access)
		return err
	}
	e := echo.New()
	e.Use(echoverify.Middleware(v))
	e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	// One request for every call, as the server's own parser would have
	// built it already: the middleware reads it and never changes it (it
	// hands the next handler a copy carrying the identity), so building it
	// each time would count the harness's work against pkg/verify.
	req, err := http.NewRequestWithContext(ctx, "GET", "/", nil)
	if err != nil {
		return r, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	middleware := func() error {
		w := &discardWriter{h: http.Header{}}
		e.ServeHTTP(w, req)
		if w.status != http.StatusNoContent {
			return fmt.Errorf("middleware answered %d", w.status)
		}
		return nil
	}
	// Rates travel as the paired bounds of empty summaries, so that quiet
	// sees their other load and keeps the least disturbed measurement.
	var rates []Rate
	err = plan.quiet(func() ([]Summary, error) {
		rs, err := interleaved(ctx, 3, d, raw, tokenVerify, library, middleware)
		runs := make([]Summary, len(rs))
		for i, x := range rs {
			runs[i].Bound = x
		}
		return runs, err
	}, func(runs []Summary) {
		for _, x := range runs {
			rates = append(rates, x.Bound)
		}
	})
	if err != nil {
		return r, err
	}
	r.Raw, r.Token, r.Library, r.Middleware = rates[0], rates[1], rates[2], rates[3]
	logf("  raw ES256 %.0f/s, pkg/token %.0f/s, pkg/verify %.0f/s, middleware %.0f/s (ratio %.2f)",
		r.Raw.PerSec, r.Token.PerSec, r.Library.PerSec, r.Middleware.PerSec, Ratio(r.Middleware.PerSec, r.Raw.PerSec))
	return r, nil
}
