// Package sql is the "sql" backend: Kisee's own users table on SQLite (the
// embedded default) or PostgreSQL, with argon2id password hashes. It
// verifies bcrypt, PBKDF2 and SHA-crypt hashes imported from elsewhere and
// re-hashes them with argon2id at the next successful login.
package sql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/password"
)

// Options are the [identity_backend.options] of the sql backend.
type Options struct {
	// URL of the database: "sqlite:kisee.db" or "postgres://...".
	URL string `toml:"url"`
}

// Backend is the sql backend. It implements kisee.Backend, Registerer,
// UserFinder, PasswordSetter and HealthChecker.
type Backend struct {
	db     *sql.DB
	hasher *password.Hasher
	now    func() time.Time
	logger *slog.Logger
}

// New returns a backend over db, whose schema is Kisee's migrations.
func New(db *sql.DB, hasher *password.Hasher, logger *slog.Logger) *Backend {
	if logger == nil {
		logger = slog.Default()
	}
	return &Backend{db: db, hasher: hasher, now: time.Now, logger: logger}
}

var (
	_ kisee.Backend        = (*Backend)(nil)
	_ kisee.Registerer     = (*Backend)(nil)
	_ kisee.UserFinder     = (*Backend)(nil)
	_ kisee.PasswordSetter = (*Backend)(nil)
	_ kisee.HealthChecker  = (*Backend)(nil)
)

const userColumns = `username, COALESCE(email, ''), is_superuser`

func scanUser(row interface{ Scan(...any) error }, extra ...any) (kisee.User, error) {
	var u kisee.User
	err := row.Scan(append([]any{&u.Username, &u.Email, &u.IsSuperuser}, extra...)...)
	u.ID = u.Username
	return u, err
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	if !kisee.PlausibleUsername(username) {
		b.hasher.Dummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	var hash string
	u, err := scanUser(b.db.QueryRowContext(ctx,
		`SELECT `+userColumns+`, password_hash FROM kisee_users WHERE username = $1`, username), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		b.hasher.Dummy(ctx, pw) // an unknown user costs what a wrong password costs
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	if err != nil {
		return kisee.User{}, fmt.Errorf("%w: identify: %v", kisee.ErrUnavailable, err)
	}
	rehash, err := b.hasher.Verify(ctx, hash, pw)
	if errors.Is(err, password.ErrMismatch) {
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	if err != nil {
		if errors.Is(err, password.ErrUnknownFormat) {
			b.logger.ErrorContext(ctx, "stored password hash has an unsupported format", "username", username)
			return kisee.User{}, kisee.ErrInvalidCredentials
		}
		return kisee.User{}, fmt.Errorf("identify: %w", err)
	}
	if rehash {
		if err := b.setPassword(ctx, username, pw, hash); err != nil {
			b.logger.WarnContext(ctx, "could not upgrade password hash", "username", username, "error", err)
		}
	}
	return u, nil
}

// Register implements kisee.Registerer.
func (b *Backend) Register(ctx context.Context, nu kisee.NewUser) (kisee.User, error) {
	hash, err := b.hasher.Hash(ctx, nu.Password)
	if err != nil {
		return kisee.User{}, fmt.Errorf("register: %w", err)
	}
	if err := b.insert(ctx, nu.Username, nu.Email, hash, false); err != nil {
		return kisee.User{}, err
	}
	return kisee.User{ID: nu.Username, Username: nu.Username, Email: nu.Email}, nil
}

func (b *Backend) insert(ctx context.Context, username, email, hash string, superuser bool) error {
	now := b.now().Unix()
	var emailArg any
	if email != "" {
		emailArg = email
	}
	_, err := b.db.ExecContext(ctx,
		`INSERT INTO kisee_users (username, email, password_hash, is_superuser, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
		username, emailArg, hash, superuser, now)
	if isUniqueViolation(err) {
		return kisee.ErrUserExists
	}
	if err != nil {
		return fmt.Errorf("%w: insert user: %v", kisee.ErrUnavailable, err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// FindByUsername implements kisee.UserFinder.
func (b *Backend) FindByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.find(ctx, `SELECT `+userColumns+` FROM kisee_users WHERE username = $1`, username)
}

// FindByEmail implements kisee.UserFinder; emails compare without case.
func (b *Backend) FindByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.find(ctx, `SELECT `+userColumns+` FROM kisee_users WHERE lower(email) = lower($1)`, email)
}

func (b *Backend) find(ctx context.Context, query, arg string) (kisee.User, error) {
	if !kisee.PlausibleUsername(arg) {
		return kisee.User{}, kisee.ErrUserNotFound
	}
	u, err := scanUser(b.db.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return kisee.User{}, kisee.ErrUserNotFound
	}
	if err != nil {
		return kisee.User{}, fmt.Errorf("%w: find user: %v", kisee.ErrUnavailable, err)
	}
	return u, nil
}

// SetPassword implements kisee.PasswordSetter.
func (b *Backend) SetPassword(ctx context.Context, username, pw string) error {
	return b.setPassword(ctx, username, pw, "")
}

// setPassword stores a new hash of pw; when oldHash is set, only if the
// stored hash is still oldHash (a re-hash must not undo a password change).
func (b *Backend) setPassword(ctx context.Context, username, pw, oldHash string) error {
	hash, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	q := `UPDATE kisee_users SET password_hash = $2, updated_at = $3 WHERE username = $1`
	args := []any{username, hash, b.now().Unix()}
	if oldHash != "" {
		q += ` AND password_hash = $4`
		args = append(args, oldHash)
	}
	res, err := b.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%w: set password: %v", kisee.ErrUnavailable, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 && oldHash == "" {
		return kisee.ErrUserNotFound
	}
	return nil
}

// Health implements kisee.HealthChecker.
func (b *Backend) Health(ctx context.Context) error {
	var n int
	if err := b.db.QueryRowContext(ctx, `SELECT 1`).Scan(&n); err != nil {
		return fmt.Errorf("users database: %w", err)
	}
	return nil
}

// EnsureRoot creates the superuser "root" with a random password when the
// users table is empty, and returns that password (to be shown once).
func (b *Backend) EnsureRoot(ctx context.Context) (string, bool, error) {
	var n int
	if err := b.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM kisee_users`).Scan(&n); err != nil {
		return "", false, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return "", false, nil
	}
	pw := rand.Text()
	hash, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return "", false, err
	}
	if err := b.insert(ctx, "root", "", hash, true); err != nil {
		if errors.Is(err, kisee.ErrUserExists) { // another instance was first
			return "", false, nil
		}
		return "", false, err
	}
	return pw, true, nil
}

// SetSuperuser grants or removes superuser status.
func (b *Backend) SetSuperuser(ctx context.Context, username string, superuser bool) error {
	res, err := b.db.ExecContext(ctx, `UPDATE kisee_users SET is_superuser = $2, updated_at = $3 WHERE username = $1`, username, superuser, b.now().Unix())
	if err != nil {
		return fmt.Errorf("%w: set superuser: %v", kisee.ErrUnavailable, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return kisee.ErrUserNotFound
	}
	return nil
}
