// Package ratelimit is the brute-force protection of every credential entry
// point (Kisee POST /jwt/ and Basic auth, Pasee POST /tokens/): it counts
// failed logins and tells the caller to slow down or refuse further
// attempts. docs/ratelimit.md describes the same policy for operators.
//
// # Use
//
// Around each password check:
//
//	delay, retryAfter, err := lim.Check(ctx, account, addr)
//	switch {
//	case err != nil:
//		// The store is unreachable: log a warning and go on as if
//		// neither delayed nor locked, so that Redis or the database
//		// being down does not take login down with it.
//	case retryAfter > 0:
//		// 429 Too Many Requests, Retry-After: RetryAfterSeconds(retryAfter).
//		// Do not verify the password and do not call Failure.
//	case delay > 0:
//		// Wait delay (or until ctx is done) before verifying.
//	}
//	// verify the password, then lim.Failure(...) or lim.Success(...)
//
// The Limiter itself never decides what a store error means: Check returns
// it with delay = retryAfter = 0, and the recommended reading above (fail
// open, logged) is the caller's choice. Failing closed would let anyone who
// can break Redis lock every user out.
//
// # Policy
//
// Failures are counted in three counters, each in a fixed window of
// Policy.Window (15 minutes) that starts at its first failure and is not
// extended by later ones: when the window ends, its failures are forgiven
// and the count starts again from zero. Counts therefore never grow
// forever.
//
//   - pair: failures of one account from one address;
//   - address: failures from one address, whatever the account;
//   - account: failures of one account, whatever the address.
//
// Check applies, in this order:
//
//  1. Lockout of the pair: when the pair count reached MaxFailures (20),
//     retryAfter is the time until the pair window ends.
//  2. Lockout of the address (credential stuffing): when the address count
//     reached AddressMaxFailures (5 × MaxFailures = 100), the address is
//     refused for every account until its window ends. When both lockouts
//     hold, retryAfter is the later of the two ends.
//  3. Progressive delay: once the pair count reached DelayAfter (5), delay
//     is 250 ms × 2^(count − DelayAfter), capped at MaxDelay (5 s): 250 ms,
//     500 ms, 1 s, 2 s, 4 s, then 5 s until the lockout.
//  4. Burst guard: from DelayAfter on, Check also counts the attempts it
//     lets through for the pair (until the pair window ends); when
//     DelayAfter + those attempts reaches MaxFailures, the pair is locked
//     even if the failures of requests still in flight have not been
//     recorded yet. A client that fires many attempts in parallel thus
//     gets no more than MaxFailures − DelayAfter of them through while
//     delayed, instead of as many as it can send during the delay. For
//     sequential attempts this changes nothing; an attempt abandoned during
//     its delay counts.
//  5. Account-wide slow-down: failures of the account from other addresses
//     never lock it (a user logging in from an address that has not failed
//     is not locked out by others' failures). They only add a small delay:
//     when the account count reached 10 × MaxFailures (200), delay is at
//     least AccountDelay (1 s, or MaxDelay if smaller), which slows a
//     distributed attack on one account without refusing its owner.
//
// Delay and retryAfter are never both positive.
//
// Success(account, addr) forgets the pair's failures only; the address and
// account counters keep running until their windows end, so an attacker
// cannot clear them by logging in to an account of his own.
//
// # Keys
//
// Accounts are compared exactly as given ("Alice" and "alice" are two
// accounts) and appear in store keys only as their SHA-256 (hex), so any
// name — Unicode, quotes, SQL, megabytes — gives a short, safe key.
// Addresses are normalised: IPv4-mapped IPv6 is read as IPv4, a port is
// dropped, and an IPv6 address counts as its /64 network (one site gets a
// whole /64, so counting single IPv6 addresses would let one attacker rotate
// through billions of them); anything that is not an IP address is hashed
// like an account. An empty address is one address like any other.
//
// # Stores
//
// MemoryStore (the default, one instance), RedisStore and SQLStore (counts
// shared by several instances) implement Store; Open builds one from the
// [rate_limit] store setting. Nothing connects to Redis unless a redis://
// URL is configured.
package ratelimit
