package ratelimit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/testenv"
	"github.com/kisee-pasee/suite/migrations"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// defaultRedisURL is used when PASEE_TEST_REDIS_URL is not set.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// redisTestClient connects to the test Redis, or skips the test loudly
// (fails under CI=true) when it cannot be reached.
func redisTestClient(t testing.TB) *redis.Client {
	t.Helper()
	u := os.Getenv("PASEE_TEST_REDIS_URL")
	if u == "" {
		u = defaultRedisURL
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("PASEE_TEST_REDIS_URL: %v", err)
	}
	// Probe once, without go-redis's retries, so that a missing Redis
	// costs one refused connection per test rather than seconds.
	probeOpt := *opt
	probeOpt.MaxRetries = -1
	probeOpt.DialerRetries = 1
	probe := redis.NewClient(&probeOpt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = probe.Ping(ctx).Err()
	_ = probe.Close()
	if err != nil {
		testenv.Missing(t, "Redis", fmt.Sprintf("unreachable at %s (%v); start it (redis-server --daemonize yes) or set PASEE_TEST_REDIS_URL", redactURL(u), err))
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisTestPrefix returns a key prefix of its own for t and deletes its
// keys when t ends.
func redisTestPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "ratelimit-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up Redis keys %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("clean up Redis keys %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}

// migratedSQLite returns a SQLite database in a temporary file with
// Kisee's migrations applied.
func migratedSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "kisee.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	migrate(t, db, sqldb.SQLite)
	return db
}

// migratedPostgres returns a fresh PostgreSQL schema with Kisee's
// migrations applied (skipped when PostgreSQL is unreachable, see pgtest).
func migratedPostgres(t testing.TB) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.OpenPostgres(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	migrate(t, db, sqldb.Postgres)
	return db
}

func migrate(t testing.TB, db *sql.DB, d sqldb.Dialect) {
	t.Helper()
	fsys, err := migrations.Kisee(string(d))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sqldb.Migrate(ctx, db, d, fsys, migrations.KiseeTable, nil); err != nil {
		t.Fatal(err)
	}
}

// peek returns what Check would answer for the next attempt of account
// from addr, without counting it.
func peek(t testing.TB, l *Limiter, account, addr string) (delay, retryAfter time.Duration) {
	t.Helper()
	k := keysFor(account, addr)
	c, err := getMany(context.Background(), l.store, []string{k.pair, k.addr, k.account, k.failures})
	if err != nil {
		t.Fatal(err)
	}
	now := l.Now()
	next := func(c counter) counter {
		if c.count == 0 {
			c.resetAt = now.Add(l.policy.Window)
		}
		c.count++
		return c
	}
	delay, retryAfter, _ = l.decide(next(c[0]), next(c[1]), next(c[2]), c[3].count, now)
	return delay, retryAfter
}
