package ratelimit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store counts within fixed windows. Keys are short printable strings
// (the Limiter hashes accounts). Implementations are safe for concurrent
// use; a window is expired from the instant it ends (now ≥ resetAt).
type Store interface {
	// Incr adds one to key, starting a window of length window at the
	// first increment (or the first after the previous window ended); it
	// returns the new count and when the window ends. Later increments do
	// not move the end. window must be positive.
	Incr(ctx context.Context, key string, window time.Duration) (count int64, resetAt time.Time, err error)
	// Get returns the count of key and the end of its window, or 0 and the
	// zero time if key is absent or its window has ended.
	Get(ctx context.Context, key string) (count int64, resetAt time.Time, err error)
	// Decr takes one from a live key (an attempt counted by Incr that is
	// not to count after all); a key brought to zero reads as absent. No
	// error if absent.
	Decr(ctx context.Context, key string) error
	// Delete forgets key (no error if absent).
	Delete(ctx context.Context, key string) error
}

var (
	_ Store     = (*MemoryStore)(nil)
	_ Store     = (*RedisStore)(nil)
	_ Store     = (*SQLStore)(nil)
	_ io.Closer = (*RedisStore)(nil)
)

// counter is one Get or Incr result.
type counter struct {
	count   int64
	resetAt time.Time
}

// batchStore is implemented by stores that answer several keys in one
// round trip (Redis) or one transaction (SQL). Results are in the order of
// keys.
type batchStore interface {
	getMany(ctx context.Context, keys []string) ([]counter, error)
	incrMany(ctx context.Context, keys []string, window time.Duration) ([]counter, error)
}

func getMany(ctx context.Context, s Store, keys []string) ([]counter, error) {
	if b, ok := s.(batchStore); ok {
		return b.getMany(ctx, keys)
	}
	out := make([]counter, len(keys))
	for i, k := range keys {
		n, r, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = counter{n, r}
	}
	return out, nil
}

// incrMany increments every key, even after an error, and joins the
// errors; without error it returns the new counters in the order of keys.
func incrMany(ctx context.Context, s Store, keys []string, window time.Duration) ([]counter, error) {
	if b, ok := s.(batchStore); ok {
		return b.incrMany(ctx, keys, window)
	}
	var errs []error
	out := make([]counter, len(keys))
	for i, k := range keys {
		n, r, err := s.Incr(ctx, k, window)
		if err != nil {
			errs = append(errs, err)
		}
		out[i] = counter{n, r}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// decrMany takes one from every key, even after an error.
func decrMany(ctx context.Context, s Store, keys []string) error {
	if b, ok := s.(interface {
		decrMany(ctx context.Context, keys []string) error
	}); ok {
		return b.decrMany(ctx, keys)
	}
	var errs []error
	for _, k := range keys {
		if err := s.Decr(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkWindow(window time.Duration) error {
	if window <= 0 {
		return fmt.Errorf("rate limit window must be positive, got %v", window)
	}
	return nil
}

// DefaultRedisPrefix is the key prefix of a RedisStore built by Open.
const DefaultRedisPrefix = "ratelimit:"

// Open builds the store named by the [rate_limit] store setting:
//
//   - "" or "memory": a MemoryStore of DefaultMaxKeys (one instance only);
//   - "redis://..." or "rediss://..." (TLS): a RedisStore with its own
//     client, closed by its Close method; the optional query parameter
//     prefix sets the key prefix (default "ratelimit:"), the others are
//     go-redis's. Open does not connect: the first use does;
//   - "sql": a SQLStore over db, whose dialect is "sqlite" or "postgres"
//     and whose schema has the rate_limit_counters table (Kisee's
//     migrations); db must not be nil.
//
// A store that implements io.Closer should be closed at shutdown.
func Open(spec string, db *sql.DB, dialect string) (Store, error) {
	switch {
	case spec == "" || spec == "memory":
		return NewMemoryStore(0), nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		opt, prefix, err := parseRedisURL(spec)
		if err != nil {
			return nil, err
		}
		s := NewRedisStore(redis.NewClient(opt), prefix)
		s.owned = true
		return s, nil
	case spec == "sql":
		if db == nil {
			return nil, errors.New(`[rate_limit] store = "sql" needs the service's SQL database, and none was given`)
		}
		if dialect != dialectSQLite && dialect != dialectPostgres {
			return nil, fmt.Errorf(`[rate_limit] store = "sql": unsupported dialect %q (want "sqlite" or "postgres")`, dialect)
		}
		return NewSQLStore(db, dialect), nil
	}
	return nil, fmt.Errorf(`[rate_limit] store = %q: want "memory", a redis:// or rediss:// URL, or "sql"`, redactURL(spec))
}

// parseRedisURL reads a redis:// URL, taking out our prefix parameter.
func parseRedisURL(spec string) (*redis.Options, string, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, "", fmt.Errorf("[rate_limit] store: invalid Redis URL %q", redactURL(spec))
	}
	prefix := DefaultRedisPrefix
	q := u.Query()
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("[rate_limit] store %q: %s", redactURL(spec), redactMessage(err.Error(), u))
	}
	return opt, prefix, nil
}

// redactURL hides the password of a URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the input: never show it.
		return "(unparsable URL)"
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redactMessage(msg string, u *url.URL) string {
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}
