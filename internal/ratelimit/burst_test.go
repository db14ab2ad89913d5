package ratelimit

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// burst fires n parallel attempts for one account from one address, each
// admitted one "verifying" a wrong password for a few milliseconds (as a
// password hash would) before reporting the failure, spread over the given
// limiters (several instances over one store). It returns how many were
// verified.
func burst(t *testing.T, limiters []*Limiter, account, addr string, n int) int {
	t.Helper()
	ctx := context.Background()
	var verified atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		l := limiters[i%len(limiters)]
		wg.Go(func() {
			<-start
			retryAfter, err := l.Admit(ctx, account, addr)
			if err != nil {
				t.Error(err)
				return
			}
			if retryAfter > 0 {
				return
			}
			verified.Add(1)
			time.Sleep(5 * time.Millisecond) // the password hash
			if err := l.Failure(ctx, account, addr); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(verified.Load())
}

// burstPolicy keeps the default thresholds with delays of 1 ms at most, so
// that a burst takes no time while still going through the delay zone.
func burstPolicy() Policy {
	p := DefaultPolicy()
	p.MaxDelay = time.Millisecond
	return p
}

// TestParallelBurstIsBounded: 200 wrong passwords sent at once for one
// account from one address get at most MaxFailures verifications, in every
// store, and the next attempt is locked out.
func TestParallelBurstIsBounded(t *testing.T) {
	for name, h := range map[string]func(*testing.T) harness{
		"memory": memoryHarness, "redis": redisHarness, "sqlite": sqliteHarness, "postgres": postgresHarness,
	} {
		t.Run(name, func(t *testing.T) {
			hs := h(t)
			l := New(hs.store, burstPolicy())
			if hs.now != nil {
				l.Now = hs.now
			}
			const n = 200
			got := burst(t, []*Limiter{l}, "root", "192.0.2.10", n)
			t.Logf("%s: %d of %d parallel attempts verified", name, got, n)
			if got > DefaultMaxFailures {
				t.Errorf("%d of %d parallel attempts were verified; want at most %d", got, n, DefaultMaxFailures)
			}
			if r, err := l.Admit(context.Background(), "root", "192.0.2.10"); err != nil || r <= 0 {
				t.Errorf("attempt after the burst: retryAfter %v, %v; want locked", r, err)
			}
		})
	}
}

// TestParallelBurstAcrossTwoInstances: the same burst split over two
// limiters (two instances) sharing one Redis or one database.
func TestParallelBurstAcrossTwoInstances(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		c := redisTestClient(t)
		prefix := redisTestPrefix(t, c)
		a := New(NewRedisStore(c, prefix), burstPolicy())
		b := New(NewRedisStore(c, prefix), burstPolicy())
		got := burst(t, []*Limiter{a, b}, "alice", "192.0.2.11", 200)
		t.Logf("redis, two instances: %d of 200 verified", got)
		if got > DefaultMaxFailures {
			t.Errorf("%d of 200 parallel attempts over two instances were verified; want at most %d", got, DefaultMaxFailures)
		}
	})
	for name, open := range map[string]func(testing.TB) *sqlDBAndDialect{"sqlite": sqliteShared, "postgres": postgresShared} {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			a := New(NewSQLStore(d.db, d.dialect), burstPolicy())
			b := New(NewSQLStore(d.db2, d.dialect), burstPolicy())
			got := burst(t, []*Limiter{a, b}, "alice", "192.0.2.12", 200)
			t.Logf("%s, two instances: %d of 200 verified", name, got)
			if got > DefaultMaxFailures {
				t.Errorf("%d of 200 parallel attempts over two instances were verified; want at most %d", got, DefaultMaxFailures)
			}
		})
	}
}

// sqlDBAndDialect is one migrated database opened twice, as two instances
// of a service would.
type sqlDBAndDialect struct {
	db, db2 *sql.DB
	dialect string
}

func sqliteShared(t testing.TB) *sqlDBAndDialect {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kisee.db")
	open := func() *sql.DB {
		db, err := sqldb.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	db := open()
	migrate(t, db, sqldb.SQLite)
	return &sqlDBAndDialect{db: db, db2: open(), dialect: "sqlite"}
}

func postgresShared(t testing.TB) *sqlDBAndDialect {
	t.Helper()
	u := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *sql.DB {
		db, err := sqldb.OpenPostgres(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	db := open()
	migrate(t, db, sqldb.Postgres)
	return &sqlDBAndDialect{db: db, db2: open(), dialect: "postgres"}
}
