package ratelimit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// harness is one store under the conformance tests, with its clock.
type harness struct {
	store Store
	now   func() time.Time
	// advance moves the store's clock; nil when the store keeps real time
	// (Redis expires keys by itself).
	advance func(time.Duration)
	// expire makes the window of key end now, without sleeping.
	expire func(t *testing.T, key string)
	// slack is the tolerance on window ends (Redis computes them from a
	// TTL in milliseconds and the local clock).
	slack time.Duration
}

func memoryHarness(t *testing.T) harness {
	clock := newFakeClock()
	s := NewMemoryStore(0)
	s.Now = clock.Now
	return harness{
		store: s, now: clock.Now, advance: clock.Advance,
		expire: func(*testing.T, string) { clock.Advance(24 * time.Hour) },
	}
}

func sqlHarness(t *testing.T, s *SQLStore) harness {
	clock := newFakeClock()
	s.Now = clock.Now
	return harness{
		store: s, now: clock.Now, advance: clock.Advance,
		expire: func(*testing.T, string) { clock.Advance(24 * time.Hour) },
	}
}

func sqliteHarness(t *testing.T) harness {
	return sqlHarness(t, NewSQLStore(migratedSQLite(t), "sqlite"))
}

func postgresHarness(t *testing.T) harness {
	return sqlHarness(t, NewSQLStore(migratedPostgres(t), "postgres"))
}

func redisHarness(t *testing.T) harness {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	return harness{
		store: NewRedisStore(c, prefix), now: time.Now, slack: 250 * time.Millisecond,
		expire: func(t *testing.T, key string) {
			// A time in the past: Redis deletes the key at once, exactly
			// as when its TTL runs out.
			if err := c.PExpireAt(context.Background(), prefix+key, time.UnixMilli(1)).Err(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestMemoryStoreConformance(t *testing.T) { testStoreConformance(t, memoryHarness, true) }
func TestRedisStoreConformance(t *testing.T)  { testStoreConformance(t, redisHarness, true) }
func TestSQLiteStoreConformance(t *testing.T) { testStoreConformance(t, sqliteHarness, true) }

// The PostgreSQL subtests run one after the other: their migrations take
// one advisory lock, and goose retries a taken lock only every 5 s.
func TestPostgresStoreConformance(t *testing.T) { testStoreConformance(t, postgresHarness, false) }

func near(t *testing.T, what string, got, want time.Time, slack time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -slack || d > slack {
		t.Errorf("%s = %v, want %v (±%v)", what, got, want, slack)
	}
}

func mustIncr(t *testing.T, s Store, key string, w time.Duration) (int64, time.Time) {
	t.Helper()
	n, r, err := s.Incr(context.Background(), key, w)
	if err != nil {
		t.Fatalf("Incr(%.40q): %v", key, err)
	}
	return n, r
}

func mustGet(t *testing.T, s Store, key string) (int64, time.Time) {
	t.Helper()
	n, r, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%.40q): %v", key, err)
	}
	return n, r
}

// testStoreConformance checks the Store contract; each subtest gets a
// fresh store from newHarness.
func testStoreConformance(t *testing.T, newHarness func(*testing.T) harness, parallel bool) {
	const w = 15 * time.Minute
	ctx := context.Background()
	maybeParallel := func(t *testing.T) {
		if parallel {
			t.Parallel()
		}
	}

	t.Run("AbsentIsZero", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		if n, r := mustGet(t, h.store, "absent"); n != 0 || !r.IsZero() {
			t.Errorf("Get(absent) = %d, %v; want 0, zero time", n, r)
		}
	})

	t.Run("Counting", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		start := h.now()
		var first time.Time
		for i := int64(1); i <= 3; i++ {
			n, r := mustIncr(t, h.store, "k", w)
			if n != i {
				t.Fatalf("Incr #%d = %d", i, n)
			}
			if i == 1 {
				first = r
				near(t, "first window end", r, start.Add(w), h.slack)
			} else {
				// A fixed window: later increments do not move its end.
				near(t, "window end", r, first, h.slack)
			}
			if h.advance != nil {
				h.advance(time.Minute)
			}
		}
		n, r := mustGet(t, h.store, "k")
		if n != 3 {
			t.Errorf("Get = %d, want 3", n)
		}
		near(t, "Get window end", r, first, h.slack)
		if n, _ := mustGet(t, h.store, "other"); n != 0 {
			t.Errorf("Get(other) = %d, want 0", n)
		}
		if n, _ := mustIncr(t, h.store, "other", w); n != 1 {
			t.Errorf("Incr(other) = %d, want 1", n)
		}
		if n, _ := mustGet(t, h.store, "k"); n != 3 {
			t.Errorf("Get(k) after Incr(other) = %d, want 3", n)
		}
	})

	t.Run("WindowRestartsAfterExpiry", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		mustIncr(t, h.store, "k", w)
		_, oldEnd := mustIncr(t, h.store, "k", w)
		h.expire(t, "k")
		if n, r := mustGet(t, h.store, "k"); n != 0 || !r.IsZero() {
			t.Errorf("Get after expiry = %d, %v; want 0, zero time", n, r)
		}
		now := h.now()
		n, r := mustIncr(t, h.store, "k", w)
		if n != 1 {
			t.Errorf("Incr after expiry = %d, want 1 (a new window)", n)
		}
		near(t, "new window end", r, now.Add(w), h.slack)
		if h.advance != nil && !r.After(oldEnd) {
			t.Errorf("new window end %v not after the old one %v", r, oldEnd)
		}
	})

	t.Run("WindowBoundary", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		if h.advance == nil {
			t.Skip("the store keeps real time; expiry is checked by WindowRestartsAfterExpiry and the TTL test")
		}
		_, end := mustIncr(t, h.store, "k", w)
		h.advance(w - time.Millisecond)
		if n, _ := mustGet(t, h.store, "k"); n != 1 {
			t.Errorf("Get 1ms before the end = %d, want 1", n)
		}
		if n, r := mustIncr(t, h.store, "k", w); n != 2 || !r.Equal(end) {
			t.Errorf("Incr 1ms before the end = %d, %v; want 2, %v", n, r, end)
		}
		h.advance(time.Millisecond)
		if n, _ := mustGet(t, h.store, "k"); n != 0 {
			t.Errorf("Get at the end = %d, want 0 (expired)", n)
		}
		if n, r := mustIncr(t, h.store, "k", time.Second); n != 1 || !r.Equal(end.Add(time.Second)) {
			t.Errorf("Incr at the end = %d, %v; want 1, %v", n, r, end.Add(time.Second))
		}
	})

	t.Run("Delete", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		mustIncr(t, h.store, "k", w)
		mustIncr(t, h.store, "k", w)
		mustIncr(t, h.store, "kept", w)
		if err := h.store.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if n, _ := mustGet(t, h.store, "k"); n != 0 {
			t.Errorf("Get after Delete = %d, want 0", n)
		}
		if n, _ := mustIncr(t, h.store, "k", w); n != 1 {
			t.Errorf("Incr after Delete = %d, want 1", n)
		}
		if n, _ := mustGet(t, h.store, "kept"); n != 1 {
			t.Errorf("Delete(k) touched another key: Get(kept) = %d", n)
		}
		if err := h.store.Delete(ctx, "never-set"); err != nil {
			t.Errorf("Delete(absent) = %v, want nil", err)
		}
	})

	t.Run("ConcurrentIncr", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		const n = 100
		counts := make([]int64, n)
		ends := make([]time.Time, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				counts[i], ends[i], errs[i] = h.store.Incr(ctx, "hot", w)
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != int64(i+1) {
				t.Fatalf("the %d increments returned %v, want each of 1..%d once", n, counts, n)
			}
		}
		for _, e := range ends {
			near(t, "window end of a concurrent increment", e, ends[0], h.slack)
		}
		if got, _ := mustGet(t, h.store, "hot"); got != n {
			t.Errorf("Get after %d concurrent Incr = %d", n, got)
		}
	})

	t.Run("ArbitraryKeys", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		keys := []string{
			`it's"; DROP TABLE rate_limit_counters; --`,
			"ключ 🔑 キー",
			"glob*?[chars]",
			"space tab\tnewline\n",
			strings.Repeat("long", 2500),
			"$1 ? %s",
		}
		for _, k := range keys {
			mustIncr(t, h.store, k, w)
			if n, _ := mustIncr(t, h.store, k, w); n != 2 {
				t.Errorf("Incr(%.40q) twice = %d", k, n)
			}
		}
		for _, k := range keys {
			if n, _ := mustGet(t, h.store, k); n != 2 {
				t.Errorf("Get(%.40q) = %d, want 2", k, n)
			}
			if err := h.store.Delete(ctx, k); err != nil {
				t.Errorf("Delete(%.40q): %v", k, err)
			}
			if n, _ := mustGet(t, h.store, k); n != 0 {
				t.Errorf("Get(%.40q) after Delete = %d", k, n)
			}
		}
	})

	t.Run("InvalidWindow", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		for _, bad := range []time.Duration{0, -time.Second} {
			if _, _, err := h.store.Incr(ctx, "k", bad); err == nil {
				t.Errorf("Incr with window %v: no error", bad)
			}
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		maybeParallel(t)
		h := newHarness(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := h.store.Incr(cctx, "k", w); !errors.Is(err, context.Canceled) {
			t.Errorf("Incr: err = %v, want context.Canceled", err)
		}
		if _, _, err := h.store.Get(cctx, "k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get: err = %v, want context.Canceled", err)
		}
		if err := h.store.Delete(cctx, "k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Delete: err = %v, want context.Canceled", err)
		}
	})

	t.Run("Limiter", func(t *testing.T) {
		// The policy over this store, batched paths included.
		maybeParallel(t)
		h := newHarness(t)
		l := New(h.store, DefaultPolicy())
		l.Now = h.now
		start := h.now()
		// Attempts are counted when they start: the 20th is the last let
		// through (with the longest delay), the 21st is locked out.
		for i := 1; i <= DefaultMaxFailures+1; i++ {
			delay, retry, err := l.Check(ctx, "alice", "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if retry == 0 {
				if err := l.Failure(ctx, "alice", "192.0.2.1"); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case i <= DefaultMaxFailures && retry != 0:
				t.Fatalf("attempt %d: locked (retryAfter %v)", i, retry)
			case i == DefaultMaxFailures && delay != DefaultMaxDelay:
				t.Fatalf("attempt %d: delay %v, want %v", i, delay, DefaultMaxDelay)
			case i == DefaultMaxFailures+1 && (retry <= 0 || delay != 0):
				t.Fatalf("attempt %d: delay %v, retryAfter %v; want locked", i, delay, retry)
			}
			if i == DefaultMaxFailures+1 {
				near(t, "unlock time", h.now().Add(retry), start.Add(DefaultWindow), h.slack+time.Millisecond)
			}
		}
		if d, r, err := l.Check(ctx, "alice", "198.51.100.7"); err != nil || d != 0 || r != 0 {
			t.Errorf("another address: %v, %v, %v; want neither delayed nor locked", d, r, err)
		}
		if err := l.Success(ctx, "alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if d, r, err := l.Check(ctx, "alice", "192.0.2.1"); err != nil || d != 0 || r != 0 {
			t.Errorf("after Success: %v, %v, %v; want neither delayed nor locked", d, r, err)
		}
	})
}
