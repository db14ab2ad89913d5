// Package tokenstore keeps Kisee's record of issued identity tokens and
// spent reset tokens in SQL, with the same queries on SQLite and
// PostgreSQL (both accept $n placeholders).
package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
)

// Store implements kisee.TokenStore over database/sql.
type Store struct {
	db *sql.DB
}

// New returns a Store over db, whose schema is Kisee's migrations.
func New(db *sql.DB) *Store { return &Store{db: db} }

var _ kisee.TokenStore = (*Store)(nil)

// Record implements kisee.TokenStore.
func (s *Store) Record(ctx context.Context, r kisee.TokenRecord) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO kisee_tokens (jti, subject, issued_at, expires_at) VALUES ($1, $2, $3, $4)`,
		r.JTI, r.Subject, r.IssuedAt.Unix(), r.ExpiresAt.Unix())
	if err != nil {
		return fmt.Errorf("record token: %w", err)
	}
	return nil
}

// Get implements kisee.TokenStore.
func (s *Store) Get(ctx context.Context, jti string) (kisee.TokenRecord, error) {
	var r kisee.TokenRecord
	var issued, expires int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT jti, subject, issued_at, expires_at, revoked_at FROM kisee_tokens WHERE jti = $1`, jti).
		Scan(&r.JTI, &r.Subject, &issued, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return r, kisee.ErrTokenNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get token: %w", err)
	}
	r.IssuedAt, r.ExpiresAt = time.Unix(issued, 0), time.Unix(expires, 0)
	if revoked.Valid {
		r.RevokedAt = time.Unix(revoked.Int64, 0)
	}
	return r, nil
}

// Revoke implements kisee.TokenStore.
func (s *Store) Revoke(ctx context.Context, jti string, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`UPDATE kisee_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL`, jti, now.Unix())
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// RevokeSubject implements kisee.TokenStore.
func (s *Store) RevokeSubject(ctx context.Context, subject string, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`UPDATE kisee_tokens SET revoked_at = $2 WHERE subject = $1 AND revoked_at IS NULL AND expires_at >= $2`,
		subject, now.Unix())
	if err != nil {
		return fmt.Errorf("revoke tokens of user: %w", err)
	}
	return nil
}

// SpendResetToken implements kisee.TokenStore.
func (s *Store) SpendResetToken(ctx context.Context, jti string, expiresAt time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO kisee_spent_reset_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`,
		jti, expiresAt.Unix())
	if err != nil {
		return false, fmt.Errorf("spend reset token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("spend reset token: %w", err)
	}
	return n == 1, nil
}

// Purge implements kisee.TokenStore. Records are kept a day past expiry so
// owners can still see that a token expired.
func (s *Store) Purge(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-24 * time.Hour).Unix()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM kisee_tokens WHERE expires_at < $1`, cutoff); err != nil {
		return fmt.Errorf("purge tokens: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM kisee_spent_reset_tokens WHERE expires_at < $1`, cutoff); err != nil {
		return fmt.Errorf("purge reset tokens: %w", err)
	}
	return nil
}

// Ping implements kisee.TokenStore.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}
