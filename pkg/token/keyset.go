package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// KeySet supplies the public keys a Verifier tries for a token.
type KeySet interface {
	// Candidates returns the key whose id is kid if there is one, else every
	// key of the set. kid is only ever a lookup key, never a path or URL.
	Candidates(ctx context.Context, kid string) ([]*PublicKey, error)
}

// StaticKeySet is a fixed list of keys, as given by PEM settings.
type StaticKeySet struct {
	keys  []*PublicKey
	byKID map[string]*PublicKey
}

// NewStaticKeySet returns a key set of keys; duplicates are dropped.
func NewStaticKeySet(keys ...*PublicKey) *StaticKeySet {
	s := &StaticKeySet{byKID: make(map[string]*PublicKey, len(keys))}
	for _, k := range keys {
		if k == nil || s.byKID[k.kid] != nil {
			continue
		}
		s.byKID[k.kid] = k
		s.keys = append(s.keys, k)
	}
	return s
}

// Keys returns the keys of the set.
func (s *StaticKeySet) Keys() []*PublicKey { return s.keys }

// Lookup returns the key whose id is kid.
func (s *StaticKeySet) Lookup(kid string) (*PublicKey, bool) {
	k, ok := s.byKID[kid]
	return k, ok
}

// Candidates implements KeySet.
func (s *StaticKeySet) Candidates(_ context.Context, kid string) ([]*PublicKey, error) {
	if k, ok := s.byKID[kid]; ok {
		return []*PublicKey{k}, nil
	}
	if len(s.keys) == 0 {
		return nil, errors.New("key set is empty")
	}
	return s.keys, nil
}

// ErrKeySetUnavailable is returned when a remote key set cannot be fetched
// and no earlier copy is cached: the issuer is down, not the token wrong.
var ErrKeySetUnavailable = errors.New("key set unavailable")

// RemoteKeySet is the JWK Set published at a URL. It is fetched on first
// use, cached, refetched when older than MaxAge, and refetched at once when
// a token names an unknown kid (a key rotation) — but at most once per
// MinRefresh, so that forged kids cannot make it hammer the issuer. When a
// refetch fails, the cached keys stay in use.
type RemoteKeySet struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	keys    *StaticKeySet
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
	failed  time.Time // last failed attempt
	group   singleflight.Group
}

// RemoteOptions configures a RemoteKeySet; zero values take the defaults.
type RemoteOptions struct {
	Client     *http.Client     // default: 10 s timeout
	MinRefresh time.Duration    // default 30 s
	MaxAge     time.Duration    // default 1 h
	Now        func() time.Time // default time.Now
}

// maxJWKSBytes bounds the size of a fetched JWK Set.
const maxJWKSBytes = 1 << 20

// NewRemoteKeySet returns a key set fetched from url.
func NewRemoteKeySet(url string, o RemoteOptions) *RemoteKeySet {
	r := &RemoteKeySet{url: url, client: o.Client, minRefresh: o.MinRefresh, maxAge: o.MaxAge, now: o.Now}
	if r.client == nil {
		r.client = &http.Client{Timeout: 10 * time.Second}
	}
	if r.minRefresh == 0 {
		r.minRefresh = 30 * time.Second
	}
	if r.maxAge == 0 {
		r.maxAge = time.Hour
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// URL returns the address the set is fetched from.
func (r *RemoteKeySet) URL() string { return r.url }

// Candidates implements KeySet.
func (r *RemoteKeySet) Candidates(ctx context.Context, kid string) ([]*PublicKey, error) {
	r.mu.Lock()
	keys, fetched, tried, failed := r.keys, r.fetched, r.tried, r.failed
	r.mu.Unlock()
	now := r.now()
	switch {
	// Nothing cached: fetch (concurrent callers share one request), unless
	// the issuer failed a moment ago.
	case keys == nil && (failed.IsZero() || now.Sub(failed) >= time.Second),
		keys != nil && now.Sub(fetched) >= r.maxAge && now.Sub(tried) >= r.minRefresh,
		keys != nil && kid != "" && now.Sub(tried) >= r.minRefresh && !has(keys, kid):
		fresh, err := r.refresh(ctx)
		if err != nil && keys == nil {
			return nil, err
		}
		if err == nil {
			keys = fresh
		}
	}
	if keys == nil {
		return nil, fmt.Errorf("%w: %s was unreachable moments ago", ErrKeySetUnavailable, r.url)
	}
	return keys.Candidates(ctx, kid)
}

func has(s *StaticKeySet, kid string) bool {
	_, ok := s.byKID[kid]
	return ok
}

// Refresh fetches the set now.
func (r *RemoteKeySet) Refresh(ctx context.Context) error {
	_, err := r.refresh(ctx)
	return err
}

func (r *RemoteKeySet) refresh(ctx context.Context) (*StaticKeySet, error) {
	v, err, _ := r.group.Do("fetch", func() (any, error) {
		r.mu.Lock()
		r.tried = r.now()
		r.mu.Unlock()
		keys, err := r.fetch(ctx)
		if err != nil {
			r.mu.Lock()
			r.failed = r.now()
			r.mu.Unlock()
			return nil, err
		}
		set := NewStaticKeySet(keys...)
		r.mu.Lock()
		r.keys, r.fetched = set, r.now()
		r.mu.Unlock()
		return set, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*StaticKeySet), nil
}

func (r *RemoteKeySet) fetch(ctx context.Context) ([]*PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeySetUnavailable, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s: %v", ErrKeySetUnavailable, r.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: fetch %s: status %d", ErrKeySetUnavailable, r.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrKeySetUnavailable, r.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeySetUnavailable, r.url, maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeySetUnavailable, r.url, err)
	}
	return keys, nil
}
