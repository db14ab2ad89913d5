package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Defaults of Policy, and the fixed parts of the policy.
const (
	// DefaultDelayAfter is the number of failures of a pair after which
	// attempts are delayed.
	DefaultDelayAfter = 5
	// DefaultMaxFailures is the number of failures of a pair that locks it
	// ([rate_limit] max_failures).
	DefaultMaxFailures = 20
	// DefaultWindow is the length of each counting window ([rate_limit] window).
	DefaultWindow = 15 * time.Minute
	// DefaultMaxDelay caps the progressive delay.
	DefaultMaxDelay = 5 * time.Second
	// AddressFactor × MaxFailures is the default AddressMaxFailures.
	AddressFactor = 5
	// AccountFactor × MaxFailures failures of an account, from any
	// addresses, slow every attempt on it by at least AccountDelay.
	AccountFactor = 10
	// BaseDelay is the first progressive delay, doubled at each further
	// failure.
	BaseDelay = 250 * time.Millisecond
	// AccountDelay is the minimum delay of a much-attacked account.
	AccountDelay = time.Second
)

// Policy holds the thresholds of the brute-force protection. A zero field
// takes its default; see DefaultPolicy.
type Policy struct {
	// DelayAfter is the pair count from which attempts are delayed
	// (default 5; negative: never delay, which also disables the burst
	// guard).
	DelayAfter int
	// MaxFailures is the pair count that locks the pair (default 20).
	MaxFailures int
	// Window is the length of the fixed counting windows (default 15m).
	Window time.Duration
	// MaxDelay caps the progressive delay (default 5s).
	MaxDelay time.Duration
	// AddressMaxFailures is the address count, over all accounts, that
	// locks the address (default 5 × MaxFailures).
	AddressMaxFailures int
}

// DefaultPolicy returns the default thresholds: delay after 5 failures,
// lock after 20 (100 for an address), 15-minute windows, delays up to 5 s.
func DefaultPolicy() Policy {
	return Policy{
		DelayAfter:         DefaultDelayAfter,
		MaxFailures:        DefaultMaxFailures,
		Window:             DefaultWindow,
		MaxDelay:           DefaultMaxDelay,
		AddressMaxFailures: AddressFactor * DefaultMaxFailures,
	}
}

// withDefaults fills the zero (or meaningless negative) fields of p.
func (p Policy) withDefaults() Policy {
	if p.DelayAfter == 0 {
		p.DelayAfter = DefaultDelayAfter
	}
	if p.MaxFailures <= 0 {
		p.MaxFailures = DefaultMaxFailures
	}
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.AddressMaxFailures <= 0 {
		p.AddressMaxFailures = AddressFactor * p.MaxFailures
	}
	return p
}

// progressiveDelay is the delay for a pair that failed count times
// (count ≥ DelayAfter).
func (p Policy) progressiveDelay(count int64) time.Duration {
	exp := count - int64(p.DelayAfter)
	if exp > 30 { // BaseDelay << 30 is already ~8.5 years; avoid overflow
		return p.MaxDelay
	}
	return min(BaseDelay<<exp, p.MaxDelay)
}

// Limiter applies a Policy over a Store. It is safe for concurrent use;
// several Limiters (one per instance) over a shared store share the counts.
type Limiter struct {
	// Now returns the current time (time.Now); tests replace it before
	// using the Limiter.
	Now func() time.Time

	// AddressLocked, when set, is called once when an address reaches
	// its lockout (it failed for many accounts): a service that sees a
	// proxy's address there has not been told to trust the proxy.
	AddressLocked func(ctx context.Context, addr string)

	store  Store
	policy Policy
}

// New returns a Limiter counting in store with policy p (zero fields of p
// take their defaults).
func New(store Store, p Policy) *Limiter {
	p = p.withDefaults()
	if m, ok := store.(*MemoryStore); ok {
		// A counter at the pair lockout is a lockout (or part of the
		// address one): never evict it to make room.
		m.SetProtectFrom(int64(min(p.MaxFailures, p.AddressMaxFailures)))
	}
	return &Limiter{Now: time.Now, store: store, policy: p}
}

// Store returns the store the limiter counts in.
func (l *Limiter) Store() Store { return l.store }

// Policy returns the policy in force, defaults filled in.
func (l *Limiter) Policy() Policy { return l.policy }

// Check is called once per attempt, before verifying the credentials of
// account presented from addr. It counts the attempt at once, in the pair,
// address and account counters (one atomic increment each), and decides
// from the counts it gets back: an attempt is a failure until Success says
// otherwise, so parallel attempts each see the ones before them and a
// burst cannot pass the limit. It returns delay > 0 when the answer must
// wait that long (progressive delay), or retryAfter > 0 when the attempt
// must be refused with 429 and Retry-After (lockout; the attempt is then
// un-counted, so that refused attempts do not count); never both. On a
// store error it returns the error with delay = retryAfter = 0: the caller
// decides (see the package documentation), except when a MemoryStore is
// full of live lockouts, which refuses the attempt.
func (l *Limiter) Check(ctx context.Context, account, addr string) (delay, retryAfter time.Duration, err error) {
	k := keysFor(account, addr)
	counted := []string{k.pair, k.addr, k.account}
	c, err := incrMany(ctx, l.store, counted, l.policy.Window)
	if err != nil {
		if full, ok := errors.AsType[*FullError](err); ok {
			return 0, full.RetryAfter, nil
		}
		return 0, 0, fmt.Errorf("rate limit check: %w", err)
	}
	delay, retryAfter, addrLocked := l.decide(c[0], c[1], c[2], 0, l.Now())
	if retryAfter > 0 {
		if addrLocked && l.AddressLocked != nil {
			l.AddressLocked(ctx, addr)
		}
		if err := decrMany(ctx, l.store, counted); err != nil {
			return 0, retryAfter, fmt.Errorf("rate limit check: un-count a refused attempt: %w", err)
		}
		return 0, retryAfter, nil
	}
	if l.policy.DelayAfter > 0 {
		failures, _, err := l.store.Get(ctx, k.failures)
		if err != nil {
			return 0, 0, fmt.Errorf("rate limit check: %w", err)
		}
		delay, _, _ = l.decide(c[0], c[1], c[2], failures, l.Now())
	}
	return delay, 0, nil
}

// decide applies the policy to the counters of an attempt, this attempt
// included, and to the failures of the pair known so far; addrLocked
// reports an address that reached its lockout just now.
func (l *Limiter) decide(pair, address, acct counter, failures int64, now time.Time) (delay, retryAfter time.Duration, addrLocked bool) {
	p := l.policy
	if pair.count > int64(p.MaxFailures) {
		retryAfter = remaining(pair.resetAt, now)
	}
	if address.count > int64(p.AddressMaxFailures) {
		retryAfter = max(retryAfter, remaining(address.resetAt, now))
		addrLocked = address.count == int64(p.AddressMaxFailures)+1
	}
	if retryAfter > 0 {
		return 0, retryAfter, addrLocked
	}
	if p.DelayAfter > 0 && failures >= int64(p.DelayAfter) {
		delay = p.progressiveDelay(failures)
	}
	// The account count includes this attempt: the ones before it are
	// count − 1.
	if acct.count-1 >= int64(AccountFactor*p.MaxFailures) {
		delay = max(delay, min(AccountDelay, p.MaxDelay))
	}
	return delay, 0, false
}

// Failure records that the credentials of account presented from addr
// were wrong. Check counted the attempt already, towards the lockouts;
// Failure adds it to the failures of the pair, from which the progressive
// delay is computed (attempts still in flight, which may be right, do not
// delay anyone).
func (l *Limiter) Failure(ctx context.Context, account, addr string) error {
	if _, _, err := l.store.Incr(ctx, keysFor(account, addr).failures, l.policy.Window); err != nil {
		return fmt.Errorf("rate limit failure: %w", err)
	}
	return nil
}

// Success records that account logged in from addr: the failures of that
// pair are forgiven, and this attempt is un-counted from the address and
// account counters, whose earlier failures stay until their windows end.
func (l *Limiter) Success(ctx context.Context, account, addr string) error {
	k := keysFor(account, addr)
	err := errors.Join(l.store.Delete(ctx, k.pair), l.store.Delete(ctx, k.failures), decrMany(ctx, l.store, []string{k.addr, k.account}))
	if err != nil {
		return fmt.Errorf("rate limit success: %w", err)
	}
	return nil
}

// Release un-counts an attempt that Check let through but that could not
// be verified (the backend was down): it is neither a failure nor a
// success.
func (l *Limiter) Release(ctx context.Context, account, addr string) error {
	k := keysFor(account, addr)
	if err := decrMany(ctx, l.store, []string{k.pair, k.addr, k.account}); err != nil {
		return fmt.Errorf("rate limit release: %w", err)
	}
	return nil
}

// Take counts one request of kind bucket from addr (registrations, flows
// started) in a fixed window and returns retryAfter > 0 once more than
// limit were made in the window. Refused requests count too. On a store
// error it returns the error and 0.
func (l *Limiter) Take(ctx context.Context, bucket, addr string, limit int, window time.Duration) (retryAfter time.Duration, err error) {
	n, resetAt, err := l.store.Incr(ctx, "b:"+hashHex(bucket)[:16]+":"+addressKey(addr), window)
	if err != nil {
		if full, ok := errors.AsType[*FullError](err); ok {
			return full.RetryAfter, nil
		}
		return 0, fmt.Errorf("rate limit %s: %w", bucket, err)
	}
	if n > int64(limit) {
		return remaining(resetAt, l.Now()), nil
	}
	return 0, nil
}

// RetryAfterSeconds is the Retry-After header value for retryAfter: whole
// seconds, rounded up, at least 1.
func RetryAfterSeconds(retryAfter time.Duration) int64 {
	s := int64((retryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// remaining is the time from now until resetAt, at least 1 ms: the store
// said the counter is live, so a clock difference between the store and
// this process must not turn a lockout into "not locked".
func remaining(resetAt, now time.Time) time.Duration {
	return max(resetAt.Sub(now), time.Millisecond)
}

// keys are the store keys of one (account, address) attempt.
type keys struct {
	pair     string // attempts of the account from the address, counted at start
	failures string // failures of the account from the address (progressive delay)
	addr     string // failures from the address, any account
	account  string // failures of the account, any address
}

func keysFor(account, addr string) keys {
	a := hashHex(account)
	n := addressKey(addr)
	return keys{
		pair:     "p:" + a + ":" + n,
		failures: "f:" + a + ":" + n,
		addr:     "a:" + n,
		account:  "u:" + a,
	}
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// addressKey normalises a client address: IPv4 as is (IPv4-mapped IPv6
// included), IPv6 as its /64 network, a port or zone dropped; anything else
// hashed.
func addressKey(addr string) string {
	s := strings.TrimSpace(addr)
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return "h" + hashHex(addr)
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	prefix, err := ip.Prefix(64)
	if err != nil { // cannot happen for a valid IPv6 address
		return "h" + hashHex(addr)
	}
	return prefix.String()
}

// Admit is Check followed by the wait it asks for: it sleeps the
// progressive delay (returning ctx's error if the request ends first) and
// returns retryAfter > 0 for an attempt that is locked out. A store error
// is returned at once, without waiting: callers log it and check the
// credentials anyway, so that a down store does not take logins down.
func (l *Limiter) Admit(ctx context.Context, account, addr string) (retryAfter time.Duration, err error) {
	delay, retryAfter, err := l.Check(ctx, account, addr)
	if err != nil || retryAfter > 0 || delay <= 0 {
		return retryAfter, err
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
