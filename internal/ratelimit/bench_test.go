package ratelimit

import (
	"context"
	"strconv"
	"testing"
)

// benchmarkCheckFailure measures one failed login's bookkeeping: Check,
// then Failure, for ever-new (account, address) pairs so that every
// iteration takes the full path rather than an early lockout.
func benchmarkCheckFailure(b *testing.B, s Store) {
	l := New(s, DefaultPolicy())
	ctx := context.Background()
	accounts := make([]string, 4096)
	addrs := make([]string, 4096)
	for i := range accounts {
		accounts[i] = "user" + strconv.Itoa(i)
		addrs[i] = "10." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ".1"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Spread over 4096² pairs: no pair fails twice, and an address
		// reaches its lockout only after 400 000 iterations.
		account, addr := accounts[i%4096], addrs[(i/4096+i)%4096]
		if _, _, err := l.Check(ctx, account, addr); err != nil {
			b.Fatal(err)
		}
		if err := l.Failure(ctx, account, addr); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCheckFailureMemory(b *testing.B) {
	benchmarkCheckFailure(b, NewMemoryStore(1<<20))
}

func BenchmarkCheckFailureRedis(b *testing.B) {
	c := redisTestClient(b)
	benchmarkCheckFailure(b, NewRedisStore(c, redisTestPrefix(b, c)))
}

func BenchmarkCheckFailureSQLite(b *testing.B) {
	benchmarkCheckFailure(b, NewSQLStore(migratedSQLite(b), "sqlite"))
}
