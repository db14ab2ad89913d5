package ratelimit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The dialects NewSQLStore and Open accept (sqldb.SQLite and sqldb.Postgres).
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// purgeEvery is how many increments a SQLStore makes between two
// housekeeping passes, each deleting up to purgeBatch expired rows.
const (
	purgeEvery = 1024
	purgeBatch = 4096
)

// The statements use $n placeholders, which SQLite and PostgreSQL both
// accept, and bound parameters only. rate_limit_counters.expires_at holds
// the end of the window in Unix MILLISECONDS (not the seconds of the other
// Kisee tables), so that windows and Retry-After are exact; a row is
// expired when expires_at ≤ now.
const (
	// sqlIncr restarts the window when the stored one has ended: in
	// ON CONFLICT DO UPDATE, every SET expression reads the old row.
	sqlIncr = `INSERT INTO rate_limit_counters (key, count, expires_at) VALUES ($1, 1, $2)
ON CONFLICT (key) DO UPDATE SET
  count = CASE WHEN rate_limit_counters.expires_at <= $3 THEN 1 ELSE rate_limit_counters.count + 1 END,
  expires_at = CASE WHEN rate_limit_counters.expires_at <= $3 THEN excluded.expires_at ELSE rate_limit_counters.expires_at END
RETURNING count, expires_at`
	sqlGet        = `SELECT count, expires_at FROM rate_limit_counters WHERE key = $1 AND expires_at > $2 AND count > 0`
	sqlDecr       = `UPDATE rate_limit_counters SET count = count - 1 WHERE key = $1 AND count > 0 AND expires_at > $2`
	sqlDelete     = `DELETE FROM rate_limit_counters WHERE key = $1`
	sqlPurge      = `DELETE FROM rate_limit_counters WHERE expires_at <= $1`
	sqlPurgeBatch = `DELETE FROM rate_limit_counters WHERE key IN (SELECT key FROM rate_limit_counters WHERE expires_at <= $1 LIMIT $2)`
)

// SQLStore is a Store in the rate_limit_counters table of the service's
// database (Kisee's migrations create it), shared by every instance using
// that database. Each increment is one atomic upsert. Expired rows are
// deleted up to 4096 at a time every 1024 increments, and all by Purge.
// Windows are measured with the instances' clocks (Now), not the
// database's. Safe for concurrent use.
type SQLStore struct {
	// Now returns the current time (time.Now); tests replace it before
	// using the store.
	Now func() time.Time

	db    *sql.DB
	err   error // a construction error, returned by every method
	incrs atomic.Uint64
}

// NewSQLStore returns a store over db, whose dialect is "sqlite" or
// "postgres". With a nil db or another dialect, every method returns an
// error (Open reports them up front).
func NewSQLStore(db *sql.DB, dialect string) *SQLStore {
	s := &SQLStore{Now: time.Now, db: db}
	switch {
	case db == nil:
		s.err = errors.New("sql rate limit store: no database")
	case dialect != dialectSQLite && dialect != dialectPostgres:
		s.err = fmt.Errorf("sql rate limit store: unsupported dialect %q (want \"sqlite\" or \"postgres\")", dialect)
	}
	return s
}

// Incr implements Store.
func (s *SQLStore) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if s.err != nil {
		return 0, time.Time{}, s.err
	}
	if err := checkWindow(window); err != nil {
		return 0, time.Time{}, err
	}
	now := s.Now()
	var count, expires int64
	err := s.db.QueryRowContext(ctx, sqlIncr, key, now.Add(window).UnixMilli(), now.UnixMilli()).Scan(&count, &expires)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sql rate limit increment: %w", err)
	}
	if s.incrs.Add(1)%purgeEvery == 0 {
		// Housekeeping only: the increment succeeded, and a lasting
		// database problem shows in the next increments; a failed pass is
		// simply retried purgeEvery increments later.
		_, _ = s.db.ExecContext(ctx, sqlPurgeBatch, now.UnixMilli(), purgeBatch)
	}
	return count, time.UnixMilli(expires), nil
}

// incrMany increments keys in one transaction, in the order given. Row
// locks are taken in that order and held to the commit, so concurrent
// attempts see every counter of theirs in the same order: an attempt that
// is the 20th on its pair is the same attempt on its address, and a burst
// cannot have attempts refused by one counter while admitted by another.
func (s *SQLStore) incrMany(ctx context.Context, keys []string, window time.Duration) ([]counter, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]counter, len(keys))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, k := range keys {
			var count, expires int64
			if err := tx.QueryRowContext(ctx, sqlIncr, k, now.Add(window).UnixMilli(), now.UnixMilli()).Scan(&count, &expires); err != nil {
				return err
			}
			out[i] = counter{count, time.UnixMilli(expires)}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sql rate limit increment: %w", err)
	}
	if s.incrs.Add(uint64(len(keys)))%purgeEvery < uint64(len(keys)) {
		_, _ = s.db.ExecContext(ctx, sqlPurgeBatch, now.UnixMilli(), purgeBatch)
	}
	return out, nil
}

// getMany reads keys one after the other: reads need no common order.
func (s *SQLStore) getMany(ctx context.Context, keys []string) ([]counter, error) {
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

// decrMany takes one from every key in one transaction, in the order given
// (the order incrMany locks them in).
func (s *SQLStore) decrMany(ctx context.Context, keys []string) error {
	if s.err != nil {
		return s.err
	}
	now := s.Now().UnixMilli()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, sqlDecr, k, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sql rate limit decrement: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction, committed when fn succeeds.
func (s *SQLStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, key string) (int64, time.Time, error) {
	if s.err != nil {
		return 0, time.Time{}, s.err
	}
	var count, expires int64
	err := s.db.QueryRowContext(ctx, sqlGet, key, s.Now().UnixMilli()).Scan(&count, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sql rate limit get: %w", err)
	}
	return count, time.UnixMilli(expires), nil
}

// Decr implements Store. A counter brought to zero stays until purged;
// it reads as absent.
func (s *SQLStore) Decr(ctx context.Context, key string) error {
	if s.err != nil {
		return s.err
	}
	if _, err := s.db.ExecContext(ctx, sqlDecr, key, s.Now().UnixMilli()); err != nil {
		return fmt.Errorf("sql rate limit decrement: %w", err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLStore) Delete(ctx context.Context, key string) error {
	if s.err != nil {
		return s.err
	}
	if _, err := s.db.ExecContext(ctx, sqlDelete, key); err != nil {
		return fmt.Errorf("sql rate limit delete: %w", err)
	}
	return nil
}

// Purge deletes every expired row and returns how many; a periodic job may
// call it, though increments already purge as they go.
func (s *SQLStore) Purge(ctx context.Context) (int64, error) {
	if s.err != nil {
		return 0, s.err
	}
	res, err := s.db.ExecContext(ctx, sqlPurge, s.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sql rate limit purge: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sql rate limit purge: %w", err)
	}
	return n, nil
}
