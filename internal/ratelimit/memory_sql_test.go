package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestMemoryStoreBounded(t *testing.T) {
	clock := newFakeClock()
	s := NewMemoryStore(10)
	s.Now = clock.Now
	ctx := context.Background()
	// Windows ending at 1m, 2m, ... 10m.
	for i := range 10 {
		if _, _, err := s.Incr(ctx, fmt.Sprint("k", i), time.Duration(i+1)*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Incr(ctx, "k5", time.Hour); err != nil { // an existing key takes no room
		t.Fatal(err)
	}
	if s.Len() != 10 {
		t.Fatalf("Len = %d, want 10", s.Len())
	}
	// Full of live counters: a new one evicts the counter that ends first.
	if _, _, err := s.Incr(ctx, "new", time.Hour); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 10 {
		t.Errorf("Len = %d, want 10 (bounded)", s.Len())
	}
	if n, _, _ := s.Get(ctx, "k0"); n != 0 {
		t.Error("k0, whose window ends first, was not evicted")
	}
	for _, k := range []string{"k1", "k5", "k9", "new"} {
		if n, _, _ := s.Get(ctx, k); n == 0 {
			t.Errorf("%s was evicted", k)
		}
	}
	if n, _, _ := s.Get(ctx, "k5"); n != 2 {
		t.Errorf("k5 = %d, want 2", n)
	}
}

func TestMemoryStorePurgesExpired(t *testing.T) {
	clock := newFakeClock()
	s := NewMemoryStore(0)
	s.Now = clock.Now
	ctx := context.Background()
	for i := range 1000 {
		if _, _, err := s.Incr(ctx, fmt.Sprint("old", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "old7"); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 999 {
		t.Fatalf("Len = %d, want 999", s.Len())
	}
	clock.Advance(time.Minute)
	if _, _, err := s.Incr(ctx, "fresh", time.Minute); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d after every other window ended, want 1 (expired purged)", s.Len())
	}
}

func TestSQLStoreMillisecondsAndPurge(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *SQLStore{
		"sqlite":   func(t testing.TB) *SQLStore { return NewSQLStore(migratedSQLite(t), "sqlite") },
		"postgres": func(t testing.TB) *SQLStore { return NewSQLStore(migratedPostgres(t), "postgres") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			clock := newFakeClock()
			s.Now = clock.Now
			ctx := context.Background()
			_, end, err := s.Incr(ctx, "k", 1500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if want := clock.Now().Add(1500 * time.Millisecond); !end.Equal(want) {
				t.Errorf("window end %v, want %v", end, want)
			}
			var stored int64
			if err := s.db.QueryRowContext(ctx, `SELECT expires_at FROM rate_limit_counters WHERE key = 'k'`).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != end.UnixMilli() {
				t.Errorf("expires_at = %d, want Unix milliseconds %d", stored, end.UnixMilli())
			}

			for i := range 10 {
				if _, _, err := s.Incr(ctx, fmt.Sprint("short", i), time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := s.Incr(ctx, "long", time.Hour); err != nil {
				t.Fatal(err)
			}
			clock.Advance(1500 * time.Millisecond)
			n, err := s.Purge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 11 {
				t.Errorf("Purge deleted %d rows, want 11", n)
			}
			if c, _, _ := s.Get(ctx, "long"); c != 1 {
				t.Errorf("Purge removed a live counter")
			}
		})
	}
}

func TestSQLStorePurgesAsItGoes(t *testing.T) {
	s := NewSQLStore(migratedSQLite(t), "sqlite")
	clock := newFakeClock()
	s.Now = clock.Now
	ctx := context.Background()
	for i := range purgeEvery - 1 {
		if _, _, err := s.Incr(ctx, fmt.Sprint("k", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	if _, _, err := s.Incr(ctx, "last", time.Minute); err != nil { // the purgeEvery-th
		t.Fatal(err)
	}
	var rows int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM rate_limit_counters`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d rows after the housekeeping pass, want 1", rows)
	}
}

// TestEvictionNeverFreesALockout: an attacker who fills the memory store
// with new counters (many addresses, many accounts) evicts cold counters,
// never a lockout; when only lockouts are left, new keys are refused.
func TestEvictionNeverFreesALockout(t *testing.T) {
	clock := newFakeClock()
	s := NewMemoryStore(100)
	s.Now = clock.Now
	l := New(s, DefaultPolicy())
	l.Now = clock.Now
	fail(t, l, "root", "192.0.2.66", DefaultMaxFailures)
	if _, r := check(t, l, "root", "192.0.2.66"); r <= 0 {
		t.Fatal("root from 192.0.2.66 not locked after 20 failures")
	}
	// 1000 attempts from 1000 addresses, 3 new counters each: the store
	// (100 counters) overflows many times over.
	for i := range 1000 {
		clock.Advance(time.Millisecond)
		fail(t, l, fmt.Sprint("user", i), fmt.Sprintf("10.%d.%d.1", i/250, i%250), 1)
	}
	if s.Evictions() == 0 {
		t.Fatal("no eviction counted")
	}
	if _, r := check(t, l, "root", "192.0.2.66"); r <= 0 {
		t.Errorf("the lockout of root from 192.0.2.66 was evicted (%d evictions)", s.Evictions())
	}

	// Full of lockouts: a new key is refused, not made room for.
	full := NewMemoryStore(4)
	full.Now = clock.Now
	lf := New(full, DefaultPolicy())
	lf.Now = clock.Now
	fail(t, lf, "root", "192.0.2.66", DefaultMaxFailures) // pair, failure, address and account counters at 20
	_, r, err := lf.Check(context.Background(), "alice", "192.0.2.67")
	if err != nil || r <= 0 {
		t.Errorf("new key in a store full of lockouts: retryAfter %v, %v; want refused", r, err)
	}
	if full.Refusals() == 0 {
		t.Error("refusal not counted")
	}
	if _, r := check(t, lf, "root", "192.0.2.66"); r <= 0 {
		t.Error("the lockout was evicted for a new key")
	}
}
