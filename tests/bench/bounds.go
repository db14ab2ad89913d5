package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Rate is how fast an operation runs on all cores, and the processor time
// one operation takes (the noise-resistant figure: other work on the
// machine lowers the rate, hardly the processor time).
type Rate struct {
	PerSec   float64
	CPUPerOp time.Duration
	// Other is the share of the machine (0 to 1) other processes used
	// while the rate was measured.
	Other float64
}

// rateOnAllCores runs fn in a loop on GOMAXPROCS goroutines for d and
// returns the calls per second and this process's processor time per call.
func rateOnAllCores(ctx context.Context, d time.Duration, fn func() error) (Rate, error) {
	cpu0, _, _ := procCPU("self")
	busy0 := machineBusy()
	var (
		n     atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		ferr  error
		start = time.Now()
	)
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := fn(); err != nil {
					once.Do(func() { ferr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _, _ := procCPU("self")
	busy1 := machineBusy()
	if ferr != nil {
		return Rate{}, ferr
	}
	if err := ctx.Err(); err != nil {
		return Rate{}, err
	}
	ops := n.Load()
	if ops == 0 {
		return Rate{}, fmt.Errorf("no operation completed in %s", d)
	}
	other := float64(max(busy1-busy0-(cpu1-cpu0), 0)) / float64(elapsed) / float64(runtime.NumCPU())
	return Rate{PerSec: float64(ops) / elapsed.Seconds(), CPUPerOp: (cpu1 - cpu0) / time.Duration(ops), Other: other}, nil
}

// interleaved measures each of fns rounds times, round after round, for
// d/rounds each, and keeps for each its best round (highest rate, least
// processor time per operation): the one least disturbed by the rest of
// the machine. Interleaving makes the figures being compared see the same
// machine.
func interleaved(ctx context.Context, rounds int, d time.Duration, fns ...func() error) ([]Rate, error) {
	best := make([]Rate, len(fns))
	for range rounds {
		for i, fn := range fns {
			r, err := rateOnAllCores(ctx, d/time.Duration(rounds), fn)
			if err != nil {
				return best, err
			}
			best[i].PerSec = max(best[i].PerSec, r.PerSec)
			if best[i].CPUPerOp == 0 || r.CPUPerOp < best[i].CPUPerOp {
				best[i].CPUPerOp = r.CPUPerOp
			}
			if r.PerSec == best[i].PerSec {
				best[i].Other = r.Other // the other load of the round kept
			}
		}
	}
	return best, nil
}

// Hashing is internal/password's Hasher at the production parameters (OWASP),
// with one hash to verify.
type Hashing struct {
	h   *password.Hasher
	enc string
}

// NewHashing hashes benchPassword once.
func NewHashing(ctx context.Context) (*Hashing, error) {
	h := password.NewHasher(password.OWASP, 0)
	enc, err := h.Hash(ctx, benchPassword)
	if err != nil {
		return nil, err
	}
	return &Hashing{h: h, enc: enc}, nil
}

// Bound is the argon2id verification rate on all cores, for d: what Kisee's
// login rate cannot exceed.
func (h *Hashing) Bound(ctx context.Context, d time.Duration) (Rate, error) {
	return rateOnAllCores(ctx, d, func() error {
		_, err := h.h.Verify(ctx, h.enc, benchPassword)
		return err
	})
}

// CryptoBounds are the ES256 rates of the operations Pasee and downstream
// services do, on all cores.
type CryptoBounds struct {
	// RawVerify is one SHA-256 and one P-256 ECDSA verification of a
	// token-sized input; RawRefresh is 1 such verification and 2 signatures
	// (what a refresh costs in cryptography).
	RawVerify, RawRefresh Rate
	// TokenVerify and TokenRefresh are the same through pkg/token (JSON
	// encoding and decoding, base64, claim checks included).
	TokenVerify, TokenRefresh Rate
}

// RawSign is the processor time of one ES256 signature, derived from the
// raw refresh and verification: the cost of one token more (an ID token).
func (b CryptoBounds) RawSign() time.Duration {
	return max(b.RawRefresh.CPUPerOp-b.RawVerify.CPUPerOp, 0) / 2
}

// ES256 holds a key and tokens shaped like Pasee's, to measure the
// cryptography of a refresh.
type ES256 struct {
	rawVerify, rawRefresh, tokenVerify, tokenRefresh func() error
}

// refreshClaims are claims shaped like Pasee's access and refresh tokens.
func refreshClaims(groups int) (access, refresh token.Claims) {
	now := time.Now().Truncate(time.Second)
	access = token.Claims{Issuer: "http://127.0.0.1:8150", Subject: "kisee-u000001", IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), ID: "3q2-7wAAAAAAAAAAAAAAAA"}
	g := make([]string, groups)
	for i := range g {
		g[i] = fmt.Sprintf("org%d.div%d.dept%d", i%7, i%5, i)
	}
	access.Set("groups", g)
	access.Set("idp", "kisee")
	access.Set("sid", "c2Vzc2lvbi1pZC0xMjM0NQ")
	refresh = token.Claims{Issuer: "http://127.0.0.1:8150", Subject: "kisee-u000001", IssuedAt: now, ExpiresAt: now.Add(720 * time.Hour), ID: "cmVmcmVzaC1qdGktMTIzNA"}
	refresh.Set("sid", "c2Vzc2lvbi1pZC0xMjM0NQ")
	refresh.Set("refresh_token", true)
	return access, refresh
}

// NewES256 makes a fresh P-256 key and Pasee-shaped tokens.
func NewES256(ctx context.Context) (*ES256, error) {
	var b ES256
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := token.NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pub := &priv.PublicKey
	signer := token.NewSigner(key)
	access, refresh := refreshClaims(0)
	at, err := signer.Sign(token.TypeAccess, access)
	if err != nil {
		return nil, err
	}
	rt, err := signer.Sign(token.TypeRefresh, refresh)
	if err != nil {
		return nil, err
	}
	accessInput := []byte(at[:strings.LastIndexByte(at, '.')])
	refreshInput := []byte(rt[:strings.LastIndexByte(rt, '.')])
	d0 := sha256.Sum256(refreshInput)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, d0[:])
	if err != nil {
		return nil, err
	}
	b.rawVerify = func() error {
		d := sha256.Sum256(refreshInput)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			return fmt.Errorf("raw verify failed")
		}
		return nil
	}
	rawSign := func(input []byte) error {
		d := sha256.Sum256(input)
		_, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
		return err
	}
	b.rawRefresh = func() error {
		if err := b.rawVerify(); err != nil {
			return err
		}
		if err := rawSign(accessInput); err != nil {
			return err
		}
		return rawSign(refreshInput)
	}
	verifier := token.NewVerifier(token.NewStaticKeySet(key.Public()), token.WithTypes(token.TypeRefresh), token.WithIssuer(refresh.Issuer))
	b.tokenVerify = func() error {
		_, err := verifier.Verify(ctx, rt)
		return err
	}
	b.tokenRefresh = func() error {
		if err := b.tokenVerify(); err != nil {
			return err
		}
		if _, err := signer.Sign(token.TypeAccess, access); err != nil {
			return err
		}
		_, err := signer.Sign(token.TypeRefresh, refresh)
		return err
	}
	return &b, nil
}

// RefreshBound is the raw ES256 rate of 1 verify + 2 signs for d.
func (b *ES256) RefreshBound(ctx context.Context, d time.Duration) (Rate, error) {
	return rateOnAllCores(ctx, d, b.rawRefresh)
}

// Bounds measures all four rates, interleaved, each the best of 3 rounds
// of d/3.
func (b *ES256) Bounds(ctx context.Context, d time.Duration) (CryptoBounds, error) {
	r, err := interleaved(ctx, 3, d, b.rawVerify, b.rawRefresh, b.tokenVerify, b.tokenRefresh)
	if err != nil {
		return CryptoBounds{}, err
	}
	return CryptoBounds{RawVerify: r[0], RawRefresh: r[1], TokenVerify: r[2], TokenRefresh: r[3]}, nil
}
