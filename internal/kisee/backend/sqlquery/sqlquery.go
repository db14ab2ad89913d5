// Package sqlquery is the "sql-query" backend: users in an existing
// database whose schema belongs to another application (a Django site, a
// forum, a legacy intranet). The settings give the SQL that fetches a user
// by login, and optionally by email and the SQL that changes a password;
// Kisee never migrates or otherwise touches that schema.
//
// # Queries
//
// Queries take their argument as the bound parameter $1 (never
// interpolated: a login such as "x' OR '1'='1" is just a string that
// matches nobody). Their result columns are recognised by name, so
// queries rename columns with AS:
//
//	id            required: the user's stable id, the token's "sub"
//	password_hash required in user_query: argon2id, bcrypt,
//	              pbkdf2_sha256 (Django), SHA-256/512-crypt ($5$, $6$)
//	email         optional
//	username      optional in user_query (default: the login as typed),
//	              required in email_query
//	is_superuser  optional, boolean (or 0/1)
//
// update_password_query receives $1 = the new argon2id hash, in PHC form
// ("$argon2id$v=19$..."), and $2 = the login; it must change exactly one
// row (it runs in a transaction that is rolled back otherwise). SQL can
// adapt the form to what the application reads: Django stores
// 'argon2' || $1, and its user_query strips the prefix again (see
// configs/kisee-sql-query.toml).
//
// # Capabilities
//
// Open returns a Backend whose dynamic type has exactly the capabilities
// the settings allow: kisee.UserFinder only when email_query is set,
// kisee.PasswordSetter only when update_password_query is set (one small
// wrapper type per combination around the same implementation). Kisee
// discovers capabilities by type assertion, so a capability that could
// only answer "not supported" is better absent: the conformance suite and
// the HTTP API then treat it as missing instead of failing at run time.
package sqlquery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// Options are the [identity_backend.options] of the sql-query backend.
type Options struct {
	// URL of the existing database: "sqlite:/path/app.db" or
	// "postgres://user@host/db". The SQLite file must exist.
	URL string `toml:"url"`
	// URLFile names a file holding URL, to keep a database password out of
	// the settings file.
	URLFile string `toml:"url_file"`
	// UserQuery fetches a user by login, given as $1. Required.
	UserQuery string `toml:"user_query"`
	// EmailQuery fetches a user by email, given as $1. Optional; without
	// it the backend cannot find users by email (no password recovery).
	EmailQuery string `toml:"email_query"`
	// UpdatePasswordQuery stores a new hash: $1 = hash, $2 = login.
	// Optional; without it users cannot change their password through
	// Kisee, and imported hashes are not upgraded to argon2id.
	UpdatePasswordQuery string `toml:"update_password_query"`
}

// Backend is what Open returns: a kisee.Backend with a health check and
// Close, whose dynamic type may also implement kisee.UserFinder and
// kisee.PasswordSetter (see the package documentation).
type Backend interface {
	kisee.Backend
	kisee.HealthChecker
	// Close closes the database connections.
	Close() error
}

// The columns a query may return.
const (
	colID        = "id"
	colUsername  = "username"
	colEmail     = "email"
	colHash      = "password_hash"
	colSuperuser = "is_superuser"
)

var knownColumns = []string{colID, colUsername, colEmail, colHash, colSuperuser}

// backend is the implementation shared by every capability combination.
type backend struct {
	db          *sql.DB
	closePool   func() // the pgx pool under db, for PostgreSQL
	hasher      *password.Hasher
	logger      *slog.Logger
	userQuery   string
	emailQuery  string
	updateQuery string
	// dummy is the last stored hash a login verified: an unknown user is
	// verified against it (result ignored), so that it costs what a known
	// user's hash costs (a Django PBKDF2 hash takes far longer than the
	// hasher's own argon2id dummy). Nil until the first known-user login.
	dummy atomic.Pointer[string]
}

// The capability combinations.
type (
	withFinder struct{ *backend }
	withSetter struct{ *backend }
	withBoth   struct{ *backend }
)

var (
	_ Backend              = (*backend)(nil)
	_ kisee.UserFinder     = withFinder{}
	_ kisee.PasswordSetter = withSetter{}
	_ kisee.UserFinder     = withBoth{}
	_ kisee.PasswordSetter = withBoth{}
)

// FindByUsername implements kisee.UserFinder.
func (b withFinder) FindByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.findByUsername(ctx, username)
}

// FindByEmail implements kisee.UserFinder.
func (b withFinder) FindByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.findByEmail(ctx, email)
}

// SetPassword implements kisee.PasswordSetter.
func (b withSetter) SetPassword(ctx context.Context, username, pw string) error {
	return b.setPassword(ctx, username, pw)
}

// FindByUsername implements kisee.UserFinder.
func (b withBoth) FindByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.findByUsername(ctx, username)
}

// FindByEmail implements kisee.UserFinder.
func (b withBoth) FindByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.findByEmail(ctx, email)
}

// SetPassword implements kisee.PasswordSetter.
func (b withBoth) SetPassword(ctx context.Context, username, pw string) error {
	return b.setPassword(ctx, username, pw)
}

var (
	param1 = regexp.MustCompile(`\$1\b`)
	param2 = regexp.MustCompile(`\$2\b`)
)

// Open opens the database at o.URL and checks the queries: each must
// use its parameters, run, and return the columns it needs. A database
// unreachable at start is only logged (the checks then happen at each
// query); a query that is wrong is an error naming its option.
func Open(ctx context.Context, o Options, hasher *password.Hasher, logger *slog.Logger) (Backend, error) {
	if hasher == nil {
		return nil, errors.New("sql-query: a password hasher is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	target, err := sqldb.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("sql-query: url: %w", err)
	}
	if target.Dialect == sqldb.SQLite {
		// Opening a missing file would create an empty database: refuse.
		if target.DSN == ":memory:" {
			return nil, errors.New("sql-query: url: an in-memory SQLite database holds no users; give the path of the existing database")
		}
		if _, err := os.Stat(target.DSN); err != nil {
			return nil, fmt.Errorf("sql-query: url: the SQLite database must exist (this backend reads another application's users): %w", err)
		}
	}
	b := &backend{
		hasher: hasher, logger: logger.With("backend", "sql-query"),
		userQuery: o.UserQuery, emailQuery: o.EmailQuery, updateQuery: o.UpdatePasswordQuery,
	}
	if target.Dialect == sqldb.Postgres {
		// Not sqldb.Open: closing the *sql.DB it returns leaves its pgx
		// pool, and the pool's connections, open; Close must end both.
		pool, err := sqldb.OpenPostgresPool(ctx, target.DSN)
		if err != nil {
			return nil, fmt.Errorf("sql-query: %w", err)
		}
		b.db, b.closePool = stdlib.OpenDBFromPool(pool), pool.Close
	} else if b.db, err = sqldb.Open(ctx, target); err != nil {
		return nil, fmt.Errorf("sql-query: %w", err)
	}
	if err := b.checkQueries(ctx); err != nil {
		b.Close()
		return nil, err
	}
	switch {
	case b.emailQuery != "" && b.updateQuery != "":
		return withBoth{b}, nil
	case b.emailQuery != "":
		return withFinder{b}, nil
	case b.updateQuery != "":
		return withSetter{b}, nil
	}
	return b, nil
}

func checkOptions(o Options) error {
	if o.URL == "" {
		return errors.New("sql-query: url is required (the existing database: sqlite:/path/app.db or postgres://user@host/db)")
	}
	if strings.TrimSpace(o.UserQuery) == "" {
		return errors.New("sql-query: user_query is required, e.g. SELECT id, email, password AS password_hash FROM users WHERE login = $1")
	}
	if !param1.MatchString(o.UserQuery) {
		return errors.New("sql-query: user_query must take the login as the bound parameter $1 (values are never pasted into SQL)")
	}
	if o.EmailQuery != "" && !param1.MatchString(o.EmailQuery) {
		return errors.New("sql-query: email_query must take the email as the bound parameter $1 (values are never pasted into SQL)")
	}
	if o.UpdatePasswordQuery != "" && (!param1.MatchString(o.UpdatePasswordQuery) || !param2.MatchString(o.UpdatePasswordQuery)) {
		return errors.New("sql-query: update_password_query must take the new hash as $1 and the login as $2, e.g. UPDATE users SET password = $1 WHERE login = $2")
	}
	return nil
}

// checkQueries runs the SELECT queries once, with an empty argument that
// matches nobody, to check their syntax and columns before the first login.
func (b *backend) checkQueries(ctx context.Context) error {
	for _, q := range []struct {
		option, query string
		required      []string
	}{
		{"user_query", b.userQuery, []string{colID, colHash}},
		{"email_query", b.emailQuery, []string{colID, colUsername}},
	} {
		if q.query == "" {
			continue
		}
		rows, err := b.db.QueryContext(ctx, q.query, "")
		if err != nil {
			if sqldb.IsUnavailable(err) {
				b.logger.WarnContext(ctx, "database unreachable at start; queries will be checked at first use", "option", q.option, "error", err)
				return nil
			}
			return fmt.Errorf("sql-query: %s does not run: %w", q.option, err)
		}
		cols, err := rows.Columns()
		rows.Close()
		if err == nil {
			_, err = columnIndexes(cols, q.required)
		}
		if err != nil {
			return fmt.Errorf("sql-query: %s: %w", q.option, err)
		}
	}
	if b.updateQuery != "" {
		// Not run (it writes), but prepared: a syntax error or a missing
		// table shows now rather than at the first password change.
		stmt, err := b.db.PrepareContext(ctx, b.updateQuery)
		if err != nil && !sqldb.IsUnavailable(err) {
			return fmt.Errorf("sql-query: update_password_query does not compile: %w", err)
		}
		if stmt != nil {
			stmt.Close()
		}
	}
	return nil
}

// columnIndexes maps each known column name to its position, refusing
// unknown names (a typo would otherwise silently drop a value).
func columnIndexes(cols, required []string) (map[string]int, error) {
	idx := map[string]int{}
	for i, c := range cols {
		name := strings.ToLower(c)
		known := false
		for _, k := range knownColumns {
			known = known || name == k
		}
		if !known {
			return nil, fmt.Errorf("unknown result column %q; name the columns %s (use AS)", c, strings.Join(knownColumns, ", "))
		}
		if _, dup := idx[name]; dup {
			return nil, fmt.Errorf("column %q is returned twice", c)
		}
		idx[name] = i
	}
	for _, r := range required {
		if _, ok := idx[r]; !ok {
			return nil, fmt.Errorf("missing result column %q (got %s; rename with AS)", r, strings.Join(cols, ", "))
		}
	}
	return idx, nil
}

// record is one user row.
type record struct {
	user kisee.User
	hash sql.NullString
}

// errAmbiguous is returned when a query returns several rows.
var errAmbiguous = errors.New("query returned more than one row")

// lookup runs query with arg and returns its only row, nil for none, or
// errAmbiguous.
func (b *backend) lookup(ctx context.Context, option, query, arg string, required []string) (*record, error) {
	rows, err := b.db.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", kisee.ErrUnavailable, option, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", kisee.ErrUnavailable, option, err)
	}
	idx, err := columnIndexes(cols, required)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", option, err)
	}
	var rec *record
	for rows.Next() {
		if rec != nil {
			return nil, errAmbiguous
		}
		var id, username, email sql.NullString
		var super sql.NullBool
		r := &record{}
		dest := make([]any, len(cols))
		for name, i := range idx {
			switch name {
			case colID:
				dest[i] = &id
			case colUsername:
				dest[i] = &username
			case colEmail:
				dest[i] = &email
			case colHash:
				dest[i] = &r.hash
			case colSuperuser:
				dest[i] = &super
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("%s: read row: %w", option, err)
		}
		if !id.Valid || id.String == "" {
			return nil, fmt.Errorf("%s: the row has no id", option)
		}
		r.user = kisee.User{ID: id.String, Username: username.String, Email: email.String, IsSuperuser: super.Valid && super.Bool}
		rec = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", kisee.ErrUnavailable, option, err)
	}
	return rec, nil
}

// Identify implements kisee.Backend.
func (b *backend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	if !kisee.PlausibleUsername(username) {
		b.spendDummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	rec, err := b.lookup(ctx, "user_query", b.userQuery, username, []string{colID, colHash})
	switch {
	case errors.Is(err, errAmbiguous):
		b.logger.ErrorContext(ctx, "user_query returned several users for one login; refusing the login (make the query match at most one row)", "login", username)
		b.spendDummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	case err != nil:
		return kisee.User{}, fmt.Errorf("sql-query: identify: %w", err)
	case rec == nil:
		b.spendDummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	case !rec.hash.Valid || rec.hash.String == "":
		// A user without a password (SSO-only, disabled) cannot log in here.
		b.spendDummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	hash := rec.hash.String
	rehash, err := b.hasher.Verify(ctx, hash, pw)
	switch {
	case errors.Is(err, password.ErrMismatch):
		b.dummy.Store(&hash)
		return kisee.User{}, kisee.ErrInvalidCredentials
	case errors.Is(err, password.ErrUnknownFormat):
		// Django marks unusable passwords with "!"; anything else is a
		// format Kisee does not verify. The hash itself is never logged.
		if !strings.HasPrefix(hash, "!") {
			b.logger.WarnContext(ctx, "stored password hash has an unsupported format", "login", username, "error", err)
		}
		b.spendDummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	case err != nil:
		return kisee.User{}, fmt.Errorf("sql-query: identify: %w", err)
	}
	b.dummy.Store(&hash)
	if rehash && b.updateQuery != "" {
		// Best effort: the login succeeds even if the upgrade fails. (A
		// password change racing this login could be overwritten by the
		// upgraded old password: the update query gets no old hash to
		// compare with.)
		if err := b.setPassword(ctx, username, pw); err != nil {
			b.logger.WarnContext(ctx, "could not upgrade password hash", "login", username, "error", err)
		}
	}
	u := rec.user
	if u.Username == "" {
		u.Username = username
	}
	return u, nil
}

// spendDummy verifies pw against the last stored hash seen (or the
// hasher's dummy), for an answer as slow as a wrong password's.
func (b *backend) spendDummy(ctx context.Context, pw string) {
	if h := b.dummy.Load(); h != nil {
		_, _ = b.hasher.Verify(ctx, *h, pw)
		return
	}
	b.hasher.Dummy(ctx, pw)
}

func (b *backend) findByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.find(ctx, "user_query", b.userQuery, username, []string{colID, colHash})
}

func (b *backend) findByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.find(ctx, "email_query", b.emailQuery, email, []string{colID, colUsername})
}

func (b *backend) find(ctx context.Context, option, query, arg string, required []string) (kisee.User, error) {
	if !kisee.PlausibleUsername(arg) {
		return kisee.User{}, kisee.ErrUserNotFound
	}
	rec, err := b.lookup(ctx, option, query, arg, required)
	switch {
	case errors.Is(err, errAmbiguous):
		b.logger.ErrorContext(ctx, option+" returned several users; treating as not found (make the query match at most one row)")
		return kisee.User{}, kisee.ErrUserNotFound
	case err != nil:
		return kisee.User{}, fmt.Errorf("sql-query: find user: %w", err)
	case rec == nil:
		return kisee.User{}, kisee.ErrUserNotFound
	}
	u := rec.user
	if u.Username == "" {
		u.Username = arg // user_query: the login
	}
	return u, nil
}

// setPassword hashes pw with argon2id and runs the update query in a
// transaction that must change exactly one row.
func (b *backend) setPassword(ctx context.Context, username, pw string) error {
	if !kisee.PlausibleUsername(username) {
		return kisee.ErrUserNotFound
	}
	hash, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("sql-query: set password: %w", err)
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: sql-query: set password: %v", kisee.ErrUnavailable, err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	res, err := tx.ExecContext(ctx, b.updateQuery, hash, username)
	if err != nil {
		return fmt.Errorf("%w: sql-query: update_password_query: %v", kisee.ErrUnavailable, err)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return fmt.Errorf("sql-query: update_password_query: rows affected: %w", err)
	case n == 0:
		return kisee.ErrUserNotFound
	case n > 1:
		b.logger.ErrorContext(ctx, "update_password_query changed several rows; rolled back", "login", username, "rows", n)
		return fmt.Errorf("sql-query: update_password_query changed %d rows for one login; rolled back", n)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: sql-query: set password: %v", kisee.ErrUnavailable, err)
	}
	return nil
}

// Health implements kisee.HealthChecker: the database answers.
func (b *backend) Health(ctx context.Context) error {
	if err := b.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sql-query database: %w", err)
	}
	return nil
}

// Close closes the database connections.
func (b *backend) Close() error {
	err := b.db.Close()
	if b.closePool != nil {
		b.closePool()
	}
	return err
}
