package attack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/testenv"
)

// redisURL is the Redis the brute-force tests share counters in.
const redisURL = "redis://127.0.0.1:6379/0"

// redisPrefix returns a key prefix of the test's own on the test Redis,
// whose keys are deleted when the test ends; without Redis the test is
// skipped loudly (failed under CI=true).
func redisPrefix(t *testing.T) string {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		testenv.Missing(t, "Redis", fmt.Sprintf("unreachable at %s (%v); start it (redis-server --daemonize yes)", redisURL, err))
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "attack-" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return prefix
}

// TestBruteForceAcrossInstancesOnRedis runs two Kisee instances, then two
// Pasee instances, sharing one Redis ([rate_limit] store = "redis://...").
// Failed logins spread over both instances lock the account for the
// attacker's address at max_failures on both; the owner, from another
// address, still logs in at both; and the lockout ends with its window,
// so an attacker cannot lock anybody out for good.
func TestBruteForceAcrossInstancesOnRedis(t *testing.T) {
	t.Parallel()
	const maxFailures, window = 6, 6 * time.Second
	limits := func(prefix string) string {
		return fmt.Sprintf("[rate_limit]\nmax_failures = %d\nwindow = %q\nstore = %q\n", maxFailures, window.String(), redisURL+"?prefix="+prefix)
	}
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }

	// lockout drives the scenario on two instances a and b, whose login
	// endpoint is at path and takes body(password).
	lockout := func(t *testing.T, a, b, path string, body func(pw string) map[string]string, refused int) {
		t.Helper()
		const attacker, owner = "203.0.113.66", "198.51.100.20"
		start := time.Now()
		for i := range maxFailures {
			inst := []string{a, b}[i%2]
			if r := do(t, "POST", inst+path, body("wrong guess"), from(attacker)...); r.status != refused {
				t.Fatalf("failure %d at instance %d: %d %s", i+1, i%2+1, r.status, r.body)
			}
		}
		for i, inst := range []string{a, b} {
			r := do(t, "POST", inst+path, body(alicePassword), from(attacker)...)
			if r.status != 429 {
				t.Fatalf("instance %d after %d failures spread over both: %d %s, want 429", i+1, maxFailures, r.status, r.body)
			}
			if err := problemError(r); err != nil {
				t.Fatal(err)
			}
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1 || time.Duration(secs)*time.Second > window+time.Second {
				t.Fatalf("Retry-After %q for a window of %s", r.header.Get("Retry-After"), window)
			}
		}
		for i, inst := range []string{a, b} {
			if r := do(t, "POST", inst+path, body(alicePassword), from(owner)...); r.status != 201 {
				t.Fatalf("the owner, from another address, at instance %d: %d %s", i+1, r.status, r.body)
			}
		}
		// The lockout is temporary: once the window has passed, the
		// attacker's address may try again (and the owner's password works
		// from there).
		time.Sleep(time.Until(start.Add(window + 500*time.Millisecond)))
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := do(t, "POST", a+path, body(alicePassword), from(attacker)...)
			if r.status == 201 {
				break
			}
			if r.status != 429 || time.Now().After(deadline) {
				t.Fatalf("after the window: %d %s", r.status, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	t.Run("kisee", func(t *testing.T) {
		t.Parallel()
		doc := "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n" + limits(redisPrefix(t))
		a, b := kiseetest.Start(t, doc), kiseetest.Start(t, doc)
		lockout(t, a.URL, b.URL, "/jwt/", func(pw string) map[string]string { return map[string]string{"username": "alice", "password": pw} }, 403)
	})
	t.Run("pasee", func(t *testing.T) {
		t.Parallel()
		k := kiseetest.Start(t, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 1000\n")
		doc := "trusted_proxies = [\"127.0.0.1\"]\n" + limits(redisPrefix(t)) + paseetest.KiseeProvider("kisee", k.URL)
		a, b := paseetest.Start(t, paseetest.SQLite, doc), paseetest.Start(t, paseetest.SQLite, doc)
		lockout(t, a.URL, b.URL, "/tokens/?idp=kisee", func(pw string) map[string]string { return map[string]string{"login": "alice", "password": pw} }, 403)
	})
}
