package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// incrScript adds one to KEYS[1] and gives it a TTL of ARGV[1] ms if it has
// none (a new key: the first increment starts the window; PEXPIRE NX
// without needing Redis 7), atomically, then returns {count, TTL in ms}.
const incrScript = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`

// decrScript takes one from KEYS[1] if it exists, keeping its TTL, and
// deletes it when nothing is left; it returns the new count (0 if absent).
const decrScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local n = redis.call('DECR', KEYS[1])
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return n
`

// getScript returns {count, TTL in ms} of KEYS[1], {0, 0} if absent.
const getScript = `
local v = redis.call('GET', KEYS[1])
if not v then
  return {0, 0}
end
return {tonumber(v), redis.call('PTTL', KEYS[1])}
`

// RedisStore is a Store in Redis, shared by every instance that uses the
// same Redis and prefix: each increment is one atomic Lua script (INCR,
// then PEXPIRE when the key has no TTL yet), and windows end by Redis
// expiry, so Redis holds no stale counter. Safe for concurrent use; it
// works with a Redis Cluster client too (one key per script).
type RedisStore struct {
	client redis.UniversalClient
	prefix string
	incr   *redis.Script
	get    *redis.Script
	decr   *redis.Script
	owned  bool // built by Open: Close closes the client
}

// NewRedisStore returns a store keeping its counters in client under keys
// that begin with prefix. It does not connect; the caller keeps owning
// client.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{
		client: client,
		prefix: prefix,
		incr:   redis.NewScript(incrScript),
		get:    redis.NewScript(getScript),
		decr:   redis.NewScript(decrScript),
	}
}

// Close closes the Redis client if Open created it; otherwise it does
// nothing (the caller owns the client).
func (s *RedisStore) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close rate limit Redis client: %w", err)
	}
	return nil
}

// Incr implements Store.
func (s *RedisStore) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if err := checkWindow(window); err != nil {
		return 0, time.Time{}, err
	}
	v, err := s.incr.Run(ctx, s.client, []string{s.prefix + key}, windowMillis(window)).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis rate limit increment: %w", err)
	}
	c, err := toCounter(v, time.Now())
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis rate limit increment: %w", err)
	}
	return c.count, c.resetAt, nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, key string) (int64, time.Time, error) {
	v, err := s.get.Run(ctx, s.client, []string{s.prefix + key}).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis rate limit get: %w", err)
	}
	c, err := toCounter(v, time.Now())
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis rate limit get: %w", err)
	}
	return c.count, c.resetAt, nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis rate limit delete: %w", err)
	}
	return nil
}

// Decr implements Store.
func (s *RedisStore) Decr(ctx context.Context, key string) error {
	if err := s.decr.Run(ctx, s.client, []string{s.prefix + key}).Err(); err != nil {
		return fmt.Errorf("redis rate limit decrement: %w", err)
	}
	return nil
}

// getMany reads several counters in one round trip (pipelined scripts).
func (s *RedisStore) getMany(ctx context.Context, keys []string) ([]counter, error) {
	out, err := s.pipeline(ctx, s.get, keys)
	if err != nil {
		return nil, fmt.Errorf("redis rate limit get: %w", err)
	}
	return out, nil
}

// incrMany increments several counters in one round trip.
func (s *RedisStore) incrMany(ctx context.Context, keys []string, window time.Duration) ([]counter, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	out, err := s.pipeline(ctx, s.incr, keys, windowMillis(window))
	if err != nil {
		return nil, fmt.Errorf("redis rate limit increment: %w", err)
	}
	return out, nil
}

// pipeline runs script once per key in one pipeline, loading the script
// and retrying once if Redis does not know it yet.
func (s *RedisStore) pipeline(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]counter, error) {
	out, err := s.pipelineOnce(ctx, script, keys, args...)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := script.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("load script: %w", lerr)
		}
		out, err = s.pipelineOnce(ctx, script, keys, args...)
	}
	return out, err
}

func (s *RedisStore) pipelineOnce(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]counter, error) {
	cmds := make([]*redis.Cmd, len(keys))
	pipe := s.client.Pipeline()
	for i, k := range keys {
		cmds[i] = script.EvalSha(ctx, pipe, []string{s.prefix + k}, args...)
	}
	_, err := pipe.Exec(ctx)
	now := time.Now()
	// Exec reports the first failed command; look at each so that a
	// NOSCRIPT anywhere is seen.
	out := make([]counter, len(keys))
	for i, cmd := range cmds {
		v, cerr := cmd.Int64Slice()
		if cerr != nil {
			return nil, cerr
		}
		c, cerr := toCounter(v, now)
		if cerr != nil {
			return nil, cerr
		}
		out[i] = c
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// toCounter reads a script's {count, TTL ms} reply. A live key always has
// a TTL (the increment script sets it); one without (TTL < 0, set by hand)
// is read as ending now.
func toCounter(v []int64, now time.Time) (counter, error) {
	if len(v) != 2 {
		return counter{}, fmt.Errorf("unexpected script reply %v", v)
	}
	if v[0] == 0 {
		return counter{}, nil
	}
	return counter{count: v[0], resetAt: now.Add(time.Duration(max(v[1], 0)) * time.Millisecond)}, nil
}

func windowMillis(window time.Duration) int64 {
	return max(window.Milliseconds(), 1)
}
