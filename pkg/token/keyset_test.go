package token

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer publishes the current ring of a test issuer over HTTP.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []*PublicKey
	fetches atomic.Int32
	status  atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...*PublicKey) *jwksServer {
	s := &jwksServer{keys: keys}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if code := int(s.status.Load()); code != http.StatusOK {
			http.Error(w, "down", code)
			return
		}
		s.mu.Lock()
		doc, _ := MarshalJWKS(s.keys...)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(keys ...*PublicKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRemoteKeySetFollowsRotation(t *testing.T) {
	k1, k2 := mustKey(t, ES256), mustKey(t, ES256)
	srv := newJWKSServer(t, k1.Public())
	clock := &fakeClock{now: time.Now()}
	set := NewRemoteKeySet(srv.URL, RemoteOptions{MinRefresh: 30 * time.Second, Now: clock.Now})
	v := NewVerifier(set)
	sign := func(k *PrivateKey) string {
		tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
		return tok
	}
	for range 5 {
		if _, err := v.Verify(context.Background(), sign(k1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for five tokens of a known key, want 1 (cached)", n)
	}
	// The issuer rotates: the new kid is unknown, so the set is refetched.
	srv.publish(k2.Public(), k1.Public())
	clock.Advance(31 * time.Second)
	if _, err := v.Verify(context.Background(), sign(k2)); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after rotation, want 2", n)
	}
}

func TestRemoteKeySetRateLimitsUnknownKids(t *testing.T) {
	k := mustKey(t, ES256)
	attacker := mustKey(t, ES256)
	srv := newJWKSServer(t, k.Public())
	clock := &fakeClock{now: time.Now()}
	v := NewVerifier(NewRemoteKeySet(srv.URL, RemoteOptions{MinRefresh: time.Minute, Now: clock.Now}))
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, _ := NewSigner(attacker).Sign(TypeJWT, Claims{Subject: "root", ExpiresAt: farFuture})
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrSignature) {
				t.Errorf("forged token: %v, want ErrSignature", err)
			}
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load(); n > 2 {
		t.Fatalf("200 tokens with unknown kids caused %d fetches, want at most 2", n)
	}
}

func TestRemoteKeySetKeepsCacheWhenIssuerDown(t *testing.T) {
	k := mustKey(t, ES256)
	srv := newJWKSServer(t, k.Public())
	clock := &fakeClock{now: time.Now()}
	v := NewVerifier(NewRemoteKeySet(srv.URL, RemoteOptions{MaxAge: time.Minute, MinRefresh: time.Second, Now: clock.Now}))
	tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	srv.status.Store(http.StatusServiceUnavailable)
	clock.Advance(2 * time.Minute) // cache is stale, refetch fails: keep the old keys
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("stale cache not used while issuer is down: %v", err)
	}
	if srv.fetches.Load() != 2 {
		t.Fatalf("fetches = %d, want a refetch attempt", srv.fetches.Load())
	}
}

func TestRemoteKeySetUnavailable(t *testing.T) {
	k := mustKey(t, ES256)
	tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
	srv := newJWKSServer(t)
	srv.status.Store(http.StatusInternalServerError)
	for name, url := range map[string]string{"5xx": srv.URL, "refused": "http://127.0.0.1:1/jwks.json"} {
		v := NewVerifier(NewRemoteKeySet(url, RemoteOptions{}))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrKeySetUnavailable) {
			t.Errorf("%s: err = %v, want ErrKeySetUnavailable", name, err)
		}
	}
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":["` + strings.Repeat("a", maxJWKSBytes) + `"]}`))
	}))
	defer huge.Close()
	if _, err := NewVerifier(NewRemoteKeySet(huge.URL, RemoteOptions{})).Verify(context.Background(), tok); !errors.Is(err, ErrKeySetUnavailable) {
		t.Errorf("oversized JWKS: %v", err)
	}
}

func TestRemoteKeySetTimesOut(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	k := mustKey(t, ES256)
	tok, _ := NewSigner(k).Sign(TypeJWT, Claims{Subject: "ada", ExpiresAt: farFuture})
	v := NewVerifier(NewRemoteKeySet(slow.URL, RemoteOptions{Client: &http.Client{Timeout: 100 * time.Millisecond}}))
	done := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), tok); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrKeySetUnavailable) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("verification hung on a slow issuer")
	}
}
