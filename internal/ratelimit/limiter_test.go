package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestLimiter returns a Limiter over a MemoryStore, both on one fake
// clock.
func newTestLimiter(t *testing.T, p Policy) (*Limiter, *MemoryStore, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	s := NewMemoryStore(0)
	s.Now = clock.Now
	l := New(s, p)
	l.Now = clock.Now
	return l, s, clock
}

// fail makes times attempts that fail: each counted by Check (whatever
// it answers), then reported by Failure.
func fail(t *testing.T, l *Limiter, account, addr string, times int) {
	t.Helper()
	for range times {
		if _, _, err := l.Check(context.Background(), account, addr); err != nil {
			t.Fatal(err)
		}
		if err := l.Failure(context.Background(), account, addr); err != nil {
			t.Fatal(err)
		}
	}
}

// succeed makes an attempt that succeeds: counted by Check, then reported
// by Success.
func succeed(t *testing.T, l *Limiter, account, addr string) {
	t.Helper()
	if _, _, err := l.Check(context.Background(), account, addr); err != nil {
		t.Fatal(err)
	}
	if err := l.Success(context.Background(), account, addr); err != nil {
		t.Fatal(err)
	}
}

// check returns what the next attempt would be told, without counting it
// (peek); Check itself is exercised by fail and the burst tests.
func check(t *testing.T, l *Limiter, account, addr string) (delay, retryAfter time.Duration) {
	t.Helper()
	delay, retryAfter = peek(t, l, account, addr)
	if delay > 0 && retryAfter > 0 {
		t.Fatalf("Check(%q, %q) = delay %v and retryAfter %v: never both", account, addr, delay, retryAfter)
	}
	return delay, retryAfter
}

func wantOpen(t *testing.T, l *Limiter, account, addr string) {
	t.Helper()
	if d, r := check(t, l, account, addr); d != 0 || r != 0 {
		t.Errorf("Check(%q, %q) = delay %v, retryAfter %v; want neither", account, addr, d, r)
	}
}

func TestDefaultPolicy(t *testing.T) {
	want := Policy{DelayAfter: 5, MaxFailures: 20, Window: 15 * time.Minute, MaxDelay: 5 * time.Second, AddressMaxFailures: 100}
	if got := DefaultPolicy(); got != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", got, want)
	}
	if got := New(NewMemoryStore(1), Policy{}).Policy(); got != want {
		t.Errorf("New with a zero Policy: %+v, want the defaults %+v", got, want)
	}
	// The address threshold follows a configured max_failures.
	got := New(NewMemoryStore(1), Policy{MaxFailures: 8, Window: time.Hour}).Policy()
	if got.AddressMaxFailures != 40 || got.Window != time.Hour || got.DelayAfter != 5 || got.MaxDelay != 5*time.Second {
		t.Errorf("New with MaxFailures 8, Window 1h: %+v", got)
	}
	if got := New(NewMemoryStore(1), Policy{DelayAfter: -1}).Policy(); got.DelayAfter != -1 {
		t.Errorf("a negative DelayAfter (no delay) became %d", got.DelayAfter)
	}
}

func TestProgressiveDelaySequence(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	want := []time.Duration{
		0, 0, 0, 0, 0, // 0–4 failures
		250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, // 5–9
		5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, // 10–14: capped
		5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, // 15–19
	}
	for failures, w := range want {
		d, r := check(t, l, "alice", "192.0.2.1")
		if d != w || r != 0 {
			t.Errorf("after %d failures: delay %v, retryAfter %v; want delay %v", failures, d, r, w)
		}
		fail(t, l, "alice", "192.0.2.1", 1)
	}
	if d, r := check(t, l, "alice", "192.0.2.1"); d != 0 || r <= 0 {
		t.Errorf("after 20 failures: delay %v, retryAfter %v; want locked", d, r)
	}
}

func TestProgressiveDelayCapAndOverflow(t *testing.T) {
	p := Policy{DelayAfter: 1, MaxFailures: 1000, MaxDelay: time.Hour}.withDefaults()
	for count, want := range map[int64]time.Duration{
		1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 14: 250 * time.Millisecond << 13, 15: time.Hour,
		16: time.Hour, 40: time.Hour, 999: time.Hour, 1 << 62: time.Hour,
	} {
		if got := p.progressiveDelay(count); got != want {
			t.Errorf("progressiveDelay(%d) = %v, want %v", count, got, want)
		}
	}
}

func TestNoDelayWhenDisabled(t *testing.T) {
	l, _, _ := newTestLimiter(t, Policy{DelayAfter: -1})
	fail(t, l, "alice", "192.0.2.1", 19)
	wantOpen(t, l, "alice", "192.0.2.1")
	fail(t, l, "alice", "192.0.2.1", 1)
	if _, r := check(t, l, "alice", "192.0.2.1"); r <= 0 {
		t.Error("DelayAfter < 0 disabled the lockout too")
	}
}

func TestLockoutAtMaxFailures(t *testing.T) {
	l, _, clock := newTestLimiter(t, DefaultPolicy())
	for range 19 {
		fail(t, l, "alice", "192.0.2.1", 1)
		clock.Advance(10 * time.Second)
	}
	if _, r := check(t, l, "alice", "192.0.2.1"); r != 0 {
		t.Fatalf("locked after 19 failures (retryAfter %v)", r)
	}
	fail(t, l, "alice", "192.0.2.1", 1) // the 20th, at start+190s
	clock.Advance(10 * time.Second)
	d, r := check(t, l, "alice", "192.0.2.1")
	// The window started at the first failure: it ends at start+15m, 200s
	// after which is now.
	if want := 15*time.Minute - 200*time.Second; r != want || d != 0 {
		t.Errorf("after 20 failures: delay %v, retryAfter %v; want 0, %v", d, r, want)
	}
	// Still locked, with less to wait, a second before the end.
	clock.Advance(r - time.Second)
	if _, r := check(t, l, "alice", "192.0.2.1"); r != time.Second {
		t.Errorf("1s before the window ends: retryAfter %v, want 1s", r)
	}
	if got := RetryAfterSeconds(15*time.Minute - 200*time.Second); got != 700 {
		t.Errorf("RetryAfterSeconds = %d, want 700", got)
	}
}

func TestUnlockWhenWindowEnds(t *testing.T) {
	l, _, clock := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "alice", "192.0.2.1", 25) // more than enough
	if _, r := check(t, l, "alice", "192.0.2.1"); r != 15*time.Minute {
		t.Fatalf("retryAfter = %v, want 15m", r)
	}
	clock.Advance(15 * time.Minute)
	// Everything is forgiven: no lockout and no delay either.
	wantOpen(t, l, "alice", "192.0.2.1")
	// The count starts again from zero.
	fail(t, l, "alice", "192.0.2.1", 4)
	wantOpen(t, l, "alice", "192.0.2.1")
	fail(t, l, "alice", "192.0.2.1", 1)
	if d, _ := check(t, l, "alice", "192.0.2.1"); d != 250*time.Millisecond {
		t.Errorf("5 failures in the new window: delay %v, want 250ms", d)
	}
}

func TestOtherAddressNotLocked(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "alice", "192.0.2.1", 20)
	if _, r := check(t, l, "alice", "192.0.2.1"); r <= 0 {
		t.Fatal("the failing pair is not locked")
	}
	// alice from an address that has not failed: neither locked nor delayed.
	wantOpen(t, l, "alice", "198.51.100.7")
	// Another account from the failing address: the address is below its
	// own threshold.
	wantOpen(t, l, "bob", "192.0.2.1")
}

func TestAccountWideFailuresOnlySlowDown(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	threshold := AccountFactor * DefaultMaxFailures // 200
	// A distributed attack: one failure from each of many addresses.
	for i := range threshold - 1 {
		fail(t, l, "alice", fmt.Sprintf("10.0.%d.%d", i/250, i%250), 1)
	}
	wantOpen(t, l, "alice", "198.51.100.7")
	fail(t, l, "alice", "10.1.0.1", 1)
	if d, r := check(t, l, "alice", "198.51.100.7"); d != time.Second || r != 0 {
		t.Errorf("account at %d failures: delay %v, retryAfter %v; want 1s, 0", threshold, d, r)
	}
	// However many more, never a lockout for a fresh address, and never
	// more than 1s from the account counter.
	for i := range 1000 {
		fail(t, l, "alice", fmt.Sprintf("10.2.%d.%d", i/250, i%250), 1)
	}
	if d, r := check(t, l, "alice", "198.51.100.7"); d != time.Second || r != 0 {
		t.Errorf("account at %d failures: delay %v, retryAfter %v; want 1s, 0", threshold+1000, d, r)
	}
	// The pair delay wins when larger.
	fail(t, l, "alice", "198.51.100.7", 9)
	if d, _ := check(t, l, "alice", "198.51.100.7"); d != 4*time.Second {
		t.Errorf("pair at 9 failures on a hot account: delay %v, want 4s", d)
	}
	// Other accounts are untouched.
	wantOpen(t, l, "bob", "198.51.100.7")
}

func TestAccountDelayCappedByMaxDelay(t *testing.T) {
	l, _, _ := newTestLimiter(t, Policy{MaxFailures: 2, MaxDelay: 300 * time.Millisecond})
	for i := range AccountFactor * 2 {
		fail(t, l, "alice", fmt.Sprintf("10.0.0.%d", i), 1)
	}
	if d, _ := check(t, l, "alice", "198.51.100.7"); d != 300*time.Millisecond {
		t.Errorf("delay %v, want MaxDelay 300ms", d)
	}
}

func TestSuccessResetsPairOnly(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "alice", "192.0.2.1", 10)
	if d, _ := check(t, l, "alice", "192.0.2.1"); d == 0 {
		t.Fatal("no delay after 10 failures")
	}
	succeed(t, l, "alice", "192.0.2.1")
	wantOpen(t, l, "alice", "192.0.2.1")
	fail(t, l, "alice", "192.0.2.1", 5)
	if d, _ := check(t, l, "alice", "192.0.2.1"); d != 250*time.Millisecond {
		t.Errorf("5 failures after a success: delay %v, want 250ms (counted from zero)", d)
	}

	// The address counter survives a success: 10+5 failures above, 84
	// from other accounts, success of alice, then one more reaches 100.
	for i := range 84 {
		fail(t, l, fmt.Sprintf("user%d", i), "192.0.2.1", 1)
	}
	succeed(t, l, "alice", "192.0.2.1")
	wantOpen(t, l, "carol", "192.0.2.1")
	fail(t, l, "mallory", "192.0.2.1", 1)
	if _, r := check(t, l, "alice", "192.0.2.1"); r <= 0 {
		t.Error("Success reset the address counter: no address lockout at 100")
	}

	// The account counter survives a success too.
	l2, _, _ := newTestLimiter(t, DefaultPolicy())
	for i := range 200 {
		fail(t, l2, "bob", fmt.Sprintf("10.0.%d.%d", i/250, i%250), 1)
	}
	succeed(t, l2, "bob", "10.0.0.0")
	if d, _ := check(t, l2, "bob", "198.51.100.7"); d != time.Second {
		t.Errorf("Success reset the account counter: delay %v, want 1s", d)
	}
}

func TestAddressLockoutAcrossAccounts(t *testing.T) {
	l, _, clock := newTestLimiter(t, DefaultPolicy())
	// Credential stuffing: one failure for each of 100 accounts.
	for i := range 99 {
		fail(t, l, fmt.Sprintf("user%d", i), "203.0.113.9", 1)
	}
	wantOpen(t, l, "victim", "203.0.113.9")
	clock.Advance(time.Minute)
	fail(t, l, "user99", "203.0.113.9", 1)
	// Locked for every account, even one never tried, until the address
	// window (started a minute ago) ends.
	for _, account := range []string{"victim", "user0", "user99"} {
		if d, r := check(t, l, account, "203.0.113.9"); r != 14*time.Minute || d != 0 {
			t.Errorf("Check(%s) from the stuffing address: delay %v, retryAfter %v; want 0, 14m", account, d, r)
		}
	}
	// Other addresses are not affected.
	wantOpen(t, l, "victim", "198.51.100.7")
	clock.Advance(14 * time.Minute)
	wantOpen(t, l, "victim", "203.0.113.9")
}

func TestBothLockoutsGiveTheLaterEnd(t *testing.T) {
	l, _, clock := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "other", "192.0.2.1", 1) // the address window starts now
	clock.Advance(5 * time.Minute)
	fail(t, l, "alice", "192.0.2.1", 20) // the pair window starts 5m later
	for i := range 79 {
		fail(t, l, fmt.Sprintf("user%d", i), "192.0.2.1", 1)
	}
	// Address: 100 failures, ends in 10m; pair: ends in 15m.
	if _, r := check(t, l, "alice", "192.0.2.1"); r != 15*time.Minute {
		t.Errorf("retryAfter %v, want 15m (the later of the two)", r)
	}
	if _, r := check(t, l, "bob", "192.0.2.1"); r != 10*time.Minute {
		t.Errorf("retryAfter for another account %v, want 10m (the address)", r)
	}
}

func TestBurstGuard(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	ctx := context.Background()
	fail(t, l, "alice", "192.0.2.1", DefaultDelayAfter)
	// 100 attempts at once, none of whose failures is recorded yet.
	const n = 100
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		delayed, refused  int
		otherErrs, theErr error
	)
	for range n {
		wg.Go(func() {
			d, r, err := l.Check(ctx, "alice", "192.0.2.1")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				theErr = err
			case d > 0 && r == 0:
				delayed++
			case r > 0 && d == 0:
				refused++
			default:
				otherErrs = fmt.Errorf("Check = %v, %v", d, r)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(theErr, otherErrs); err != nil {
		t.Fatal(err)
	}
	if want := DefaultMaxFailures - DefaultDelayAfter; delayed != want || refused != n-want {
		t.Errorf("%d parallel attempts after %d failures: %d let through, %d refused; want %d, %d",
			n, DefaultDelayAfter, delayed, refused, want, n-want)
	}
	// A success clears the guard with the pair.
	if err := l.Success(ctx, "alice", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	wantOpen(t, l, "alice", "192.0.2.1")
	fail(t, l, "alice", "192.0.2.1", DefaultDelayAfter)
	if d, r := check(t, l, "alice", "192.0.2.1"); d != 250*time.Millisecond || r != 0 {
		t.Errorf("after Success and 5 new failures: %v, %v; want 250ms, 0", d, r)
	}
}

func TestBurstGuardEndsWithPairWindow(t *testing.T) {
	l, _, clock := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "alice", "192.0.2.1", DefaultDelayAfter)
	for range 15 {
		// Counted at start, then abandoned during their delay.
		if _, _, err := l.Check(context.Background(), "alice", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, r := check(t, l, "alice", "192.0.2.1"); r != 15*time.Minute {
		t.Fatalf("16th attempt in the delay zone: retryAfter %v, want 15m", r)
	}
	clock.Advance(15 * time.Minute)
	wantOpen(t, l, "alice", "192.0.2.1")
	fail(t, l, "alice", "192.0.2.1", DefaultDelayAfter)
	if d, r := check(t, l, "alice", "192.0.2.1"); d != 250*time.Millisecond || r != 0 {
		t.Errorf("new window: %v, %v; want 250ms, 0 (guard forgiven with the pair)", d, r)
	}
}

func TestAccountsComparedAsGiven(t *testing.T) {
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	fail(t, l, "alice", "192.0.2.1", 20)
	for _, other := range []string{"Alice", "alice ", " alice", "ALICE"} {
		wantOpen(t, l, other, "192.0.2.1")
	}
}

func TestKeysSafeAndBounded(t *testing.T) {
	accounts := []string{
		"",
		"ünïcødé 用户 🔐",
		`root'; DROP TABLE rate_limit_counters; --`,
		"a:b:c",
		"with\x00nul and \xff invalid UTF-8",
		strings.Repeat("x", 1<<20),
	}
	for _, a := range accounts {
		k := keysFor(a, "192.0.2.1")
		for _, key := range []string{k.pair, k.addr, k.account} {
			if len(key) > 200 {
				t.Errorf("key of %.20q is %d bytes", a, len(key))
			}
			for _, r := range key {
				if r <= ' ' || r > '~' {
					t.Errorf("key %q of %.20q has a non-printable or non-ASCII character", key, a)
					break
				}
			}
		}
	}
	// Distinct accounts and addresses give distinct keys.
	seen := map[string]string{}
	for _, a := range accounts {
		for _, addr := range []string{"192.0.2.1", "192.0.2.2", "garbage", ""} {
			k := keysFor(a, addr)
			for _, key := range []string{k.pair, k.account} {
				if prev, ok := seen[key]; ok && prev != a+"|"+addr && !strings.HasPrefix(key, "u:") {
					t.Errorf("key %q shared by %.20q and %.20q", key, prev, a+"|"+addr)
				}
				seen[key] = a + "|" + addr
			}
		}
	}

	// End to end on SQLite: hostile names count like any other.
	db := migratedSQLite(t)
	l := New(NewSQLStore(db, "sqlite"), DefaultPolicy())
	for _, a := range accounts {
		fail(t, l, a, "192.0.2.1\x00'--", 20)
		if _, r := check(t, l, a, "192.0.2.1\x00'--"); r <= 0 {
			t.Errorf("account %.20q: not locked after 20 failures", a)
		}
	}
}

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 ", "192.0.2.1"},
		{"192.0.2.1:54321", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:443", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:8080", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	} {
		if got := addressKey(tc.in); got != tc.want {
			t.Errorf("addressKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Not an IP: hashed, distinct, stable.
	a, b := addressKey("unix:/run/socket"), addressKey("unknown")
	if !strings.HasPrefix(a, "h") || len(a) != 65 || a == b || a != addressKey("unix:/run/socket") {
		t.Errorf("hashed addresses: %q, %q", a, b)
	}
	// One IPv6 /64 is one address: rotating inside it does not help.
	l, _, _ := newTestLimiter(t, DefaultPolicy())
	for i := range 20 {
		fail(t, l, "alice", fmt.Sprintf("2001:db8:1:2::%x", i+1), 1)
	}
	if _, r := check(t, l, "alice", "2001:db8:1:2:abcd::1"); r <= 0 {
		t.Error("20 failures from one /64 did not lock its other addresses")
	}
	wantOpen(t, l, "alice", "2001:db8:1:3::1")
}

func TestStoreErrorsAreReturned(t *testing.T) {
	// A real store that fails: a SQL database that has been closed.
	db := migratedSQLite(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l := New(NewSQLStore(db, "sqlite"), DefaultPolicy())
	ctx := context.Background()
	d, r, err := l.Check(ctx, "alice", "192.0.2.1")
	if err == nil || d != 0 || r != 0 {
		t.Errorf("Check on a broken store = %v, %v, %v; want 0, 0 and an error", d, r, err)
	}
	if err != nil && !strings.Contains(err.Error(), "rate limit check") {
		t.Errorf("Check error %q lacks context", err)
	}
	if err := l.Release(ctx, "alice", "192.0.2.1"); err == nil {
		t.Error("Release on a broken store: no error")
	}
	if err := l.Success(ctx, "alice", "192.0.2.1"); err == nil {
		t.Error("Success on a broken store: no error")
	}

	// A canceled request: the error is the context's.
	lm, _, _ := newTestLimiter(t, DefaultPolicy())
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := lm.Check(cctx, "alice", "192.0.2.1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a canceled context: %v", err)
	}

	// Misconfigured SQL stores report it at every call.
	for _, s := range []*SQLStore{NewSQLStore(nil, "sqlite"), NewSQLStore(migratedSQLite(t), "mysql")} {
		if _, _, err := s.Incr(ctx, "k", time.Minute); err == nil {
			t.Error("Incr on a misconfigured SQLStore: no error")
		}
		if _, _, err := s.Get(ctx, "k"); err == nil {
			t.Error("Get on a misconfigured SQLStore: no error")
		}
		if err := s.Delete(ctx, "k"); err == nil {
			t.Error("Delete on a misconfigured SQLStore: no error")
		}
		if _, err := s.Purge(ctx); err == nil {
			t.Error("Purge on a misconfigured SQLStore: no error")
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Millisecond: 1, time.Second: 1, time.Second + 1: 2, 14*time.Minute + 59*time.Second + 1: 900, 0: 1,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// Admit waits the delay Check asks for, stops waiting when the request
// ends, and passes a lockout on.
func TestAdmit(t *testing.T) {
	l := New(NewMemoryStore(100), Policy{DelayAfter: 1, MaxFailures: 3, Window: time.Minute})
	ctx := context.Background()
	if ra, err := l.Admit(ctx, "alice", "203.0.113.1"); ra != 0 || err != nil {
		t.Fatalf("first attempt: %v %v", ra, err)
	}
	_ = l.Failure(ctx, "alice", "203.0.113.1")
	start := time.Now()
	if ra, err := l.Admit(ctx, "alice", "203.0.113.1"); ra != 0 || err != nil || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("after a failure: %v %v, waited %s (want the 250 ms delay)", ra, err, time.Since(start))
	}
	_ = l.Failure(ctx, "alice", "203.0.113.1")
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Admit(short, "alice", "203.0.113.1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request ending during the delay: %v", err)
	}
	_ = l.Failure(ctx, "alice", "203.0.113.1")
	if ra, err := l.Admit(ctx, "alice", "203.0.113.1"); ra <= 0 || err != nil {
		t.Fatalf("locked out: %v %v", ra, err)
	}
}
