package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisWindowIsAServerTTL(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	s := NewRedisStore(c, prefix)
	ctx := context.Background()
	for range 3 {
		if _, _, err := s.Incr(ctx, "k", 15*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Redis itself will drop the counter when the window ends: no stale
	// keys, no sweeper.
	ttl, err := c.PTTL(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 14*time.Minute || ttl > 15*time.Minute {
		t.Errorf("PTTL = %v, want just under 15m", ttl)
	}
	// A counter that lost its TTL (PERSIST by hand) gets one back at the
	// next increment instead of living forever.
	if err := c.Persist(ctx, prefix+"k").Err(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.Incr(ctx, "k", time.Minute); err != nil || n != 4 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if ttl, err := c.PTTL(ctx, prefix+"k").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL after PERSIST and Incr = %v, %v; want ≤ 1m", ttl, err)
	}
}

// Two service instances, each with its own client and Limiter, share the
// counts through one Redis.
func TestRedisTwoInstances(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	newInstance := func() *Limiter {
		opt := *c.Options()
		client := redis.NewClient(&opt)
		t.Cleanup(func() { _ = client.Close() })
		return New(NewRedisStore(client, prefix), DefaultPolicy())
	}
	a, b := newInstance(), newInstance()
	ctx := context.Background()

	t.Run("AlternatingFailuresLockBoth", func(t *testing.T) {
		// Each attempt reaches one instance, alternately: Check there,
		// then Failure there.
		for i := range DefaultMaxFailures {
			inst := a
			if i%2 == 1 {
				inst = b
			}
			if _, r, err := inst.Check(ctx, "alice", "192.0.2.1"); err != nil || r != 0 {
				t.Fatalf("after %d failures: retryAfter %v, err %v; want not locked", i, r, err)
			}
			if err := inst.Failure(ctx, "alice", "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
		}
		for name, l := range map[string]*Limiter{"a": a, "b": b} {
			d, r, err := l.Check(ctx, "alice", "192.0.2.1")
			if err != nil || d != 0 || r <= 14*time.Minute || r > 15*time.Minute {
				t.Errorf("instance %s after 20 failures spread over both: %v, %v, %v; want locked ~15m", name, d, r, err)
			}
		}
		if err := b.Success(ctx, "alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if d, r, err := a.Check(ctx, "alice", "192.0.2.1"); err != nil || d != 0 || r != 0 {
			t.Errorf("instance a after a success on b: %v, %v, %v; want open", d, r, err)
		}
	})

	t.Run("ConcurrentAttempts", func(t *testing.T) {
		// 100 attempts at once over both instances: 20 are counted, the
		// 80 refused ones are un-counted again, in every counter.
		var wg sync.WaitGroup
		errs := make([]error, 100)
		for i := range 100 {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() { _, _, errs[i] = l.Check(ctx, "bob", "198.51.100.7") })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		k := keysFor("bob", "198.51.100.7")
		for _, key := range []string{k.pair, k.addr, k.account} {
			if n, _, err := a.store.Get(ctx, key); err != nil || n != DefaultMaxFailures {
				t.Errorf("counter %s = %d, %v; want exactly %d", key[:2], n, err, DefaultMaxFailures)
			}
		}
	})

	t.Run("BurstGuardAcrossInstances", func(t *testing.T) {
		for range DefaultDelayAfter {
			if _, _, err := a.Check(ctx, "carol", "203.0.113.5"); err != nil {
				t.Fatal(err)
			}
			if err := b.Failure(ctx, "carol", "203.0.113.5"); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var through, refused int
		var wg sync.WaitGroup
		for i := range 60 {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				d, r, err := l.Check(ctx, "carol", "203.0.113.5")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case d > 0:
					through++
				case r > 0:
					refused++
				}
			})
		}
		wg.Wait()
		if want := DefaultMaxFailures - DefaultDelayAfter; through != want || refused != 60-want {
			t.Errorf("60 parallel attempts on two instances: %d through, %d refused; want %d, %d", through, refused, want, 60-want)
		}
	})
}

func TestRedisReloadsFlushedScripts(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	l := New(NewRedisStore(c, prefix), DefaultPolicy())
	ctx := context.Background()
	if _, _, err := l.Check(ctx, "alice", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	// A Redis restart or SCRIPT FLUSH empties the script cache; the
	// pipelined paths must load the scripts again.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Check(ctx, "alice", "192.0.2.1"); err != nil {
		t.Fatalf("Check after SCRIPT FLUSH: %v", err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Success(ctx, "bob", "192.0.2.1"); err != nil {
		t.Fatalf("Success (a decrement) after SCRIPT FLUSH: %v", err)
	}
	if n, _, err := l.store.Get(ctx, keysFor("alice", "192.0.2.1").pair); err != nil || n != 2 {
		t.Errorf("pair count = %d, %v; want 2", n, err)
	}
}

func TestRedisWrongTypeIsAnError(t *testing.T) {
	c := redisTestClient(t)
	prefix := redisTestPrefix(t, c)
	s := NewRedisStore(c, prefix)
	ctx := context.Background()
	if err := c.LPush(ctx, prefix+"list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Incr(ctx, "list", time.Minute); err == nil || !strings.Contains(err.Error(), "redis rate limit") {
		t.Errorf("Incr on a list: %v; want a wrapped error", err)
	}
	if _, err := incrMany(ctx, s, []string{"ok", "list"}, time.Minute); err == nil {
		t.Error("incrMany with a list key: no error")
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"", "memory"} {
		s, err := Open(spec, nil, "")
		if err != nil {
			t.Fatalf("Open(%q): %v", spec, err)
		}
		if _, ok := s.(*MemoryStore); !ok {
			t.Errorf("Open(%q) = %T, want *MemoryStore", spec, s)
		}
	}

	if _, err := Open("sql", nil, "sqlite"); err == nil || !strings.Contains(err.Error(), "[rate_limit]") {
		t.Errorf(`Open("sql", nil db) = %v; want an error naming the setting`, err)
	}
	db := migratedSQLite(t)
	if _, err := Open("sql", db, "mysql"); err == nil {
		t.Error(`Open("sql", dialect mysql): no error`)
	}
	s, err := Open("sql", db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.Incr(ctx, "k", time.Minute); err != nil || n != 1 {
		t.Errorf("SQL store from Open: Incr = %d, %v", n, err)
	}

	for _, spec := range []string{"Memory", "redis", "sqlite:kisee.db", "mysql://u:hunter2@db/x", "redis:/x"} {
		_, err := Open(spec, db, "sqlite")
		if err == nil {
			t.Errorf("Open(%q): no error", spec)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", spec, err)
		}
	}
	for _, spec := range []string{"redis://:hunter2@127.0.0.1:6379/notadb", "redis://:hunter2@[::1", "rediss://u:hunter2@h/0?bogus=1"} {
		_, err := Open(spec, nil, "")
		if err == nil {
			t.Errorf("Open(%q): no error", spec)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", spec, err)
		}
	}

	// A Redis URL is not dialled by Open: an unreachable one opens fine
	// and fails at first use, with the error returned.
	start := time.Now()
	s, err = Open("redis://:hunter2@127.0.0.1:1/0?dial_timeout=1s&max_retries=-1", nil, "")
	if err != nil {
		t.Fatalf("Open(unreachable Redis): %v", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Errorf("Open took %v: it must not connect", time.Since(start))
	}
	if _, _, err := s.Get(ctx, "k"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Get on an unreachable Redis: %v; want an error without the password", err)
	}
	if err := s.(*RedisStore).Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestOpenRedis(t *testing.T) {
	c := redisTestClient(t)
	ctx := context.Background()
	prefix := redisTestPrefix(t, c)
	opt := c.Options()
	spec := fmt.Sprintf("redis://%s/%d?prefix=%s", opt.Addr, opt.DB, prefix)
	if opt.Password != "" {
		t.Skip("the test Redis needs a password; not rebuilding its URL")
	}
	s, err := Open(spec, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	rs := s.(*RedisStore)
	t.Cleanup(func() { _ = rs.Close() })
	if n, _, err := s.Incr(ctx, "k", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if v, err := c.Get(ctx, prefix+"k").Result(); err != nil || v != "1" {
		t.Errorf("the counter is not under the prefix parameter: %q, %v", v, err)
	}
	// The default prefix.
	s2, err := Open(fmt.Sprintf("redis://%s/%d", opt.Addr, opt.DB), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.(*RedisStore).prefix; got != DefaultRedisPrefix {
		t.Errorf("default prefix %q", got)
	}
	_ = s2.(*RedisStore).Close()
	// A store over the caller's client does not close it.
	if err := NewRedisStore(c, prefix).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("the caller's client was closed: %v", err)
	}
}
