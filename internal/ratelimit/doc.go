// Package ratelimit is the brute-force protection of every credential entry
// point (Kisee POST /jwt/ and Basic auth, Pasee POST /tokens/): it counts
// login attempts as they start and tells the caller to slow down or refuse
// further ones. It also counts other anonymous requests per address (Take:
// registrations, flow starts). docs/ratelimit.md describes the same policy
// for operators.
//
// # Use
//
// Around each password check:
//
//	delay, retryAfter, err := lim.Check(ctx, account, addr) // counts the attempt
//	switch {
//	case err != nil:
//		// The store is unreachable: log a warning and go on as if
//		// neither delayed nor locked, so that Redis or the database
//		// being down does not take login down with it.
//	case retryAfter > 0:
//		// 429 Too Many Requests, Retry-After: RetryAfterSeconds(retryAfter).
//		// Do not verify the password.
//	case delay > 0:
//		// Wait delay (or until ctx is done) before verifying.
//	}
//	// verify the password, then lim.Failure, lim.Success or lim.Release
//
// Admit is Check followed by the wait. The Limiter itself never decides
// what a store error means, except that a MemoryStore full of lockouts
// refuses new keys (see MemoryStore).
//
// # Policy
//
// Check increments the pair (account and address), address and account
// counters atomically before any verification and decides from the counts
// it gets back, which include every attempt started before (in flight or
// failed): a burst of parallel attempts cannot pass the limit. Each counter
// lives in a fixed window of Policy.Window (15 minutes) from its first
// count, not extended by later ones.
//
//  1. Lockout of the pair: more than MaxFailures (20) attempts; retryAfter
//     is the time until the pair window ends.
//  2. Lockout of the address (credential stuffing): more than
//     AddressMaxFailures (100) attempts, any account; when both hold, the
//     later end. A refused attempt is un-counted (Store.Decr).
//  3. Progressive delay, from the pair's recorded failures (Failure):
//     from DelayAfter (5), 250 ms × 2^(failures − 5), at most MaxDelay (5 s).
//  4. Account-wide slow-down: from 10 × MaxFailures (200) attempts on the
//     account from anywhere, at least AccountDelay (1 s); never a lockout.
//
// Success forgets the pair and un-counts the attempt from the address and
// account counters; Release un-counts an attempt that could not be
// verified.
//
// # Keys
//
// Accounts appear in store keys only as their SHA-256 (hex); callers pass
// the backend's canonical name. Addresses are normalised: IPv4-mapped IPv6
// is read as IPv4, a port is dropped, and an IPv6 address counts as its /64
// network; anything that is not an IP address is hashed.
//
// # Stores
//
// MemoryStore (the default, one instance), RedisStore and SQLStore (counts
// shared by several instances) implement Store; Open builds one from the
// [rate_limit] store setting. Nothing connects to Redis unless a redis://
// URL is configured.
package ratelimit
