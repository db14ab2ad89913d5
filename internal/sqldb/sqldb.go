// Package sqldb opens the suite's databases from their settings URL —
// "sqlite:kisee.db" (the embedded default, modernc.org/sqlite in WAL mode)
// or "postgres://user@host/db" (pgx) — and applies the embedded goose
// migrations.
package sqldb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Dialect is the SQL dialect of a database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Target is a parsed database URL.
type Target struct {
	Dialect Dialect
	// DSN is the driver's connection string: a file path for SQLite, the
	// URL itself for PostgreSQL.
	DSN string
}

// ParseURL reads a storage URL: "sqlite:path", "sqlite:///abs/path",
// "sqlite::memory:", "postgres://..." or "postgresql://...".
func ParseURL(raw string) (Target, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return Target{}, fmt.Errorf("invalid PostgreSQL URL: %w", redact(err, raw))
		}
		return Target{Dialect: Postgres, DSN: raw}, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		path = strings.TrimPrefix(path, "//") // sqlite:///abs → /abs
		if path == "" {
			return Target{}, errors.New("sqlite URL without a path, as in sqlite:pasee.db")
		}
		return Target{Dialect: SQLite, DSN: path}, nil
	}
	return Target{}, fmt.Errorf("unsupported database URL %q: use sqlite:FILE or postgres://USER@HOST/DB", scrub(raw))
}

// scrub hides a password in a URL for messages.
func scrub(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redact(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
		}
	}
	return err
}

// Scrub returns raw with any password replaced, fit for logs.
func Scrub(raw string) string { return scrub(raw) }

// OpenSQLite opens a SQLite database file in WAL mode with a busy timeout,
// foreign keys on, and write transactions that take the write lock at
// BEGIN (so concurrent writers queue instead of failing).
func OpenSQLite(path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	if path == ":memory:" {
		// One in-memory database shared by the connections of this *sql.DB
		// only: a unique name keeps two stores of one process apart.
		var b [8]byte
		_, _ = rand.Read(b[:])
		dsn = "file:mem" + hex.EncodeToString(b[:]) + "?mode=memory&cache=shared&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_txlock=immediate"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// OpenPostgresPool opens a pgx connection pool.
func OpenPostgresPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", redact(err, dsn))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err, dsn))
	}
	return pool, nil
}

// OpenPostgres opens PostgreSQL through database/sql (pgx's stdlib driver),
// for code that serves SQLite and PostgreSQL with the same queries.
func OpenPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	pool, err := OpenPostgresPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	// Closing a *sql.DB made by stdlib.OpenDBFromPool leaves the pool open;
	// database/sql closes a connector that is an io.Closer, so wrap it.
	db := sql.OpenDB(poolConnector{Connector: stdlib.GetPoolConnector(pool), pool: pool})
	// database/sql keeps 2 idle connections by default and hands the others
	// back to pgxpool after each use, paying an acquire and a release per
	// statement under load; keep as many as pgxpool allows instead.
	n := int(pool.Config().MaxConns)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// poolConnector closes its pgx pool when the *sql.DB is closed.
type poolConnector struct {
	driver.Connector
	pool *pgxpool.Pool
}

// Close implements io.Closer.
func (c poolConnector) Close() error {
	c.pool.Close()
	return nil
}

// Open opens t with database/sql.
func Open(ctx context.Context, t Target) (*sql.DB, error) {
	if t.Dialect == Postgres {
		return OpenPostgres(ctx, t.DSN)
	}
	return OpenSQLite(t.DSN)
}

// OpenURL opens the database at a storage URL for a part of a service that
// keeps its own tables in the service's database (the service migrates
// them at start). A private in-memory SQLite database (":memory:"), a new
// database at each opening that no migrate command can reach, is migrated
// here with migrationsFor(dialect), its versions recorded in table.
func OpenURL(ctx context.Context, url string, migrationsFor func(dialect string) (fs.FS, error), table string) (*sql.DB, error) {
	target, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, target)
	if err != nil {
		return nil, err
	}
	if target.Dialect == SQLite && target.DSN == ":memory:" {
		fsys, err := migrationsFor(string(SQLite))
		if err == nil {
			err = Migrate(ctx, db, SQLite, fsys, table, nil)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Migrate applies the goose migrations of fsys to db, recording versions in
// table. On PostgreSQL an advisory lock keeps concurrent starts from
// migrating twice.
func Migrate(ctx context.Context, db *sql.DB, dialect Dialect, fsys fs.FS, table string, logger *slog.Logger) error {
	gd := database.DialectSQLite3
	if dialect == Postgres {
		gd = database.DialectPostgres
	}
	store, err := database.NewStore(gd, table)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithStore(store), goose.WithDisableGlobalRegistry(true)}
	if dialect == Postgres {
		// One lock per schema and version table: concurrent starts of one
		// service on one schema migrate once, other schemas do not wait.
		var schema string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(schema+"."+table)), lock.WithLockTimeout(1, 120))
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider("", db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		if logger != nil {
			logger.Info("migration applied", "table", table, "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// lockID derives a stable advisory lock id per version table.
func lockID(table string) int64 {
	var h int64 = 5381
	for _, c := range table {
		h = h*33 + int64(c)
	}
	if h < 0 {
		h = -h
	}
	return h
}

// Wrap wraps err with the operation that failed; when err means the
// database cannot be reached (IsUnavailable), the result also matches
// unavailable, the caller's own "retry later" error (pasee.ErrUnavailable),
// which its API answers with 503.
func Wrap(op string, err, unavailable error) error {
	if IsUnavailable(err) {
		return fmt.Errorf("%w: %s: %w", unavailable, op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Throttle lets periodic housekeeping (deleting expired rows) run at most
// once per interval in a process, whichever goroutine asks first. The zero
// value is ready: the first call is due.
type Throttle struct{ last atomic.Int64 }

// Due reports whether the task should run now, and if so records it, so
// that concurrent callers get true once.
func (t *Throttle) Due(now time.Time, every time.Duration) bool {
	last := t.last.Load()
	return now.UnixMilli()-last >= every.Milliseconds() && t.last.CompareAndSwap(last, now.UnixMilli())
}

// IsUnavailable reports whether err means the database cannot be reached
// (connection refused, reset, shutting down) rather than a bad query: the
// service answers 503 for these and recovers by itself when it returns.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "no such host", "failed to connect",
		"the database system is shutting down", "the database system is starting up", "terminating connection",
		"conn closed", "unexpected EOF", "i/o timeout", "database is locked", "SQLITE_BUSY", "server closed", "57P01", "57P03", "08006", "08001"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded)
}
