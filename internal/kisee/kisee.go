// Package kisee is the domain of Kisee, the identity provider: it answers
// "is this username/password pair valid?" and, if so, issues a signed
// identity token. Users live in a Backend (one package per kind under
// kisee/backend); optional capabilities are small interfaces a backend
// may also implement. Service holds the rules; kisee/api serves them.
package kisee

import (
	"context"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is what a backend knows of an identified user.
type User struct {
	// ID becomes the token's "sub". For Kisee's own table it is the username.
	ID          string
	Username    string
	Email       string
	IsSuperuser bool
	// Claims are extra claims the backend adds to the identity token
	// (LDAP attributes, settings of the test backend...).
	Claims map[string]any
}

// Backend identifies users. It is the only capability every backend has.
type Backend interface {
	// Identify returns the user when password is theirs, and an error
	// wrapping ErrInvalidCredentials for an unknown user or a wrong
	// password alike (and in about the same time).
	Identify(ctx context.Context, username, password string) (User, error)
}

// NewUser is a registration request.
type NewUser struct {
	Username string
	Email    string
	Password string
}

// Registerer is a backend that can create users (self-registration).
type Registerer interface {
	// Register creates u; ErrUserExists if the username or email is taken.
	Register(ctx context.Context, u NewUser) (User, error)
}

// UserFinder is a backend that can look users up without a password
// (password recovery, token owner checks).
type UserFinder interface {
	// FindByUsername returns the user, or an error wrapping ErrUserNotFound.
	FindByUsername(ctx context.Context, username string) (User, error)
	// FindByEmail returns the user, or an error wrapping ErrUserNotFound.
	FindByEmail(ctx context.Context, email string) (User, error)
}

// PasswordSetter is a backend that can change a password.
type PasswordSetter interface {
	SetPassword(ctx context.Context, username, password string) error
}

// HealthChecker is a backend whose health /health reports.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Errors of backends and of the service.
var (
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrUserExists         = errors.New("user already exists")
	ErrUserNotFound       = errors.New("user not found")
	ErrNotSupported       = errors.New("not supported by this backend")
	ErrUnavailable        = errors.New("backend unavailable")
)

// TokenRecord is what Kisee remembers of an identity token it issued.
type TokenRecord struct {
	JTI       string
	Subject   string
	IssuedAt  time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero while valid
}

// Revoked reports whether the token was revoked.
func (r TokenRecord) Revoked() bool { return !r.RevokedAt.IsZero() }

// TokenStore remembers issued tokens and spent reset tokens.
type TokenStore interface {
	// Record stores a newly issued token.
	Record(ctx context.Context, r TokenRecord) error
	// Get returns the record of jti, or an error wrapping ErrTokenNotFound.
	Get(ctx context.Context, jti string) (TokenRecord, error)
	// Revoke marks jti revoked at now (idempotent).
	Revoke(ctx context.Context, jti string, now time.Time) error
	// RevokeSubject revokes every unexpired token of subject.
	RevokeSubject(ctx context.Context, subject string, now time.Time) error
	// SpendResetToken records that the reset token jti was used; it reports
	// false when it had been used before.
	SpendResetToken(ctx context.Context, jti string, expiresAt time.Time) (bool, error)
	// Purge deletes records of tokens expired before now.
	Purge(ctx context.Context, now time.Time) error
	Ping(ctx context.Context) error
}

// ErrTokenNotFound is returned for a jti Kisee never issued (or purged).
var ErrTokenNotFound = errors.New("token not found")

// Limiter is the brute-force protection consulted around each password
// check (implemented by internal/ratelimit).
type Limiter interface {
	// Admit counts the attempt as it starts and waits the progressive
	// delay, or returns retryAfter > 0 when attempts for account from addr
	// are locked out.
	Admit(ctx context.Context, account, addr string) (retryAfter time.Duration, err error)
	// Failure, Success and Release say how an admitted attempt ended:
	// wrong, right (the pair is forgiven and the attempt un-counted), or
	// not verified at all (un-counted).
	Failure(ctx context.Context, account, addr string) error
	Success(ctx context.Context, account, addr string) error
	Release(ctx context.Context, account, addr string) error
}

// CanonicalNamer is implemented by backends that match usernames loosely
// (LDAP compares uid without case and insignificant spaces): the
// brute-force counters key on the canonical name, so that "Alice",
// "ALICE" and " alice" count as the one account they reach.
type CanonicalNamer interface {
	CanonicalName(username string) string
}

// MaxUsernameLength bounds the usernames any backend is asked about.
const MaxUsernameLength = 255

// PlausibleUsername reports whether s could be a username at all: valid
// UTF-8, no control characters, at most MaxUsernameLength bytes. Backends
// treat anything else as an unknown user, without asking their database.
func PlausibleUsername(s string) bool {
	if s == "" || len(s) > MaxUsernameLength || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
