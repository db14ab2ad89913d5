package kisee

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Errors of the account lifecycle: registration, recovery, password change.
var (
	ErrRegistrationDisabled = errors.New("self-registration is disabled")
	ErrRecoveryDisabled     = errors.New("password recovery is disabled")
	// ErrIdentityToken is an identity token offered where only a
	// password-reset token (or the password itself) will do.
	ErrIdentityToken = errors.New("an identity token cannot change a password")
	// ErrWrongUser is valid credentials or a reset token of another user.
	ErrWrongUser = errors.New("credentials do not apply to this user")
	// ErrResetTokenUsed is a reset token used before: each works once.
	ErrResetTokenUsed = errors.New("password-reset token already used")
	// ErrCannotRegister and ErrCannotSetPassword wrap ErrNotSupported for
	// a backend without the capability.
	ErrCannotRegister    = fmt.Errorf("%w: the backend cannot create users", ErrNotSupported)
	ErrCannotSetPassword = fmt.Errorf("%w: the backend cannot change passwords", ErrNotSupported)
)

// ClaimPasswordResetFor is the claim of a reset token naming its user
// (compat: the original Kisee's name).
const ClaimPasswordResetFor = "password_reset_for"

// RecoveryConfig enables password recovery by email. Recovery is on when
// Outbox and Email are set and the backend can find users and set
// passwords.
type RecoveryConfig struct {
	Outbox Outbox
	Email  *ResetEmail
	// TTL is the lifetime of reset tokens; DefaultResetTTL when zero.
	TTL time.Duration
}

// RegistrationOpen returns nil when POST /users/ may create users, else
// ErrRegistrationDisabled (turned off) or ErrCannotRegister.
func (s *Service) RegistrationOpen() error {
	if !s.registration {
		return ErrRegistrationDisabled
	}
	if _, ok := s.backend.(Registerer); !ok {
		return ErrCannotRegister
	}
	return nil
}

// Registrations are limited per client address: each costs a password
// hash and creates a row, and anonymous clients may ask for them.
const (
	RegistrationsPerAddress = 10
	RegistrationWindow      = time.Hour
)

// requestLimiter counts requests of a kind per client address (implemented
// by internal/ratelimit).
type requestLimiter interface {
	Take(ctx context.Context, bucket, addr string, limit int, window time.Duration) (retryAfter time.Duration, err error)
}

// AdmitRegistration counts a registration attempt from addr that passed
// validation, before its password is hashed, and returns a *LockedError once addr made
// RegistrationsPerAddress of them within RegistrationWindow. A limiter
// store that is down lets the attempt through (logged).
func (s *Service) AdmitRegistration(ctx context.Context, addr string) error {
	rl, ok := s.limiter.(requestLimiter)
	if !ok {
		return nil
	}
	retryAfter, err := rl.Take(ctx, "registration", addr, RegistrationsPerAddress, RegistrationWindow)
	switch {
	case err != nil:
		s.logger.WarnContext(ctx, "rate limiter unavailable; registration not limited", "error", err)
	case retryAfter > 0:
		return &LockedError{RetryAfter: retryAfter}
	}
	return nil
}

// Register creates a user (self-registration) after checking its
// username, email and password, and counting it against the client
// address recorded in ctx (WithClientAddr). Errors: those of
// RegistrationOpen, a *ValidationError, *LockedError, ErrUserExists,
// ErrUnavailable.
func (s *Service) Register(ctx context.Context, nu NewUser) (User, error) {
	if err := s.RegistrationOpen(); err != nil {
		return User{}, err
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"username", nu.Username}, {"email", nu.Email}, {"password", nu.Password}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return User{}, invalid(ErrMissingField, "missing %s; send {\"username\": ..., \"email\": ..., \"password\": ...}", strings.Join(missing, ", "))
	}
	if err := ValidateUsername(nu.Username); err != nil {
		return User{}, err
	}
	if err := ValidateEmail(nu.Email); err != nil {
		return User{}, err
	}
	if err := s.passwords.Check(nu.Password, nu.Username, nu.Email); err != nil {
		return User{}, err
	}
	if err := s.AdmitRegistration(ctx, ClientAddr(ctx)); err != nil {
		return User{}, err
	}
	u, err := s.backend.(Registerer).Register(ctx, nu)
	switch {
	case errors.Is(err, ErrUserExists):
		return User{}, ErrUserExists
	case err != nil:
		return User{}, unavailable("register", err)
	}
	s.metrics.UsersRegistered.Inc()
	s.logger.InfoContext(ctx, "user registered", "username", u.Username)
	return u, nil
}

// unavailable wraps a backend or store failure in ErrUnavailable (once).
func unavailable(op string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

// CanSetPasswords reports whether the backend can change passwords.
func (s *Service) CanSetPasswords() bool {
	_, ok := s.backend.(PasswordSetter)
	return ok
}

// RecoveryEnabled reports whether password recovery by email works here.
func (s *Service) RecoveryEnabled() bool {
	_, finder := s.backend.(UserFinder)
	return s.recovery.Outbox != nil && s.recovery.Email != nil && finder && s.CanSetPasswords()
}

// ResetRequest names the account whose password was lost.
type ResetRequest struct {
	Username string
	Email    string
	// Login is a username or, failing that, an email address (compat).
	Login string
}

// RequestPasswordReset starts a password recovery and returns at once.
//
// The request path does the same, constant work whether or not the user
// exists: it only hands the request to the outbox. Looking the user up,
// signing and recording the token, rendering and sending the email all
// happen in the outbox's worker, so neither the answer nor its timing
// tells whether the account exists. Errors: ErrRecoveryDisabled, or a
// *ValidationError when req names nobody.
func (s *Service) RequestPasswordReset(req ResetRequest) error {
	if !s.RecoveryEnabled() {
		return ErrRecoveryDisabled
	}
	if req.Username == "" && req.Email == "" && req.Login == "" {
		return invalid(ErrMissingField, `send {"email": ...} or {"username": ...} ("login" is accepted too)`)
	}
	s.recovery.Outbox.Enqueue(func(ctx context.Context) (Message, bool, error) {
		return s.composeReset(ctx, req)
	})
	return nil
}

// composeReset runs in the outbox's worker: it finds the user, issues a
// reset token and renders the email.
func (s *Service) composeReset(ctx context.Context, req ResetRequest) (Message, bool, error) {
	u, err := s.findForReset(ctx, req)
	if errors.Is(err, ErrUserNotFound) {
		s.logger.DebugContext(ctx, "password recovery for an unknown user: nothing sent")
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, unavailable("password recovery: find user", err)
	}
	if u.Email == "" {
		s.logger.InfoContext(ctx, "password recovery for a user without email address: nothing sent", "username", u.Username)
		return Message{}, false, nil
	}
	raw, err := s.issueResetToken(ctx, u)
	if err != nil {
		return Message{}, false, err
	}
	subject, body, err := s.recovery.Email.Render(ResetEmailData{
		Username: u.Username, Token: raw, ExpiresIn: HumanDuration(s.recovery.TTL),
	})
	if err != nil {
		return Message{}, false, fmt.Errorf("password recovery: render email: %w", err)
	}
	return Message{To: u.Email, Subject: subject, Body: body, Kind: "password_reset", User: u.Username}, true, nil
}

// findForReset looks the user up by username, then login (as a username,
// else as an email), then email: the first found wins.
func (s *Service) findForReset(ctx context.Context, req ResetRequest) (User, error) {
	f := s.backend.(UserFinder)
	type lookup struct {
		find func(context.Context, string) (User, error)
		key  string
	}
	lookups := []lookup{{f.FindByUsername, req.Username}, {f.FindByUsername, req.Login}}
	if strings.Contains(req.Login, "@") {
		lookups = append(lookups, lookup{f.FindByEmail, req.Login})
	}
	lookups = append(lookups, lookup{f.FindByEmail, req.Email})
	for _, l := range lookups {
		if l.key == "" || !PlausibleUsername(l.key) {
			continue
		}
		u, err := l.find(ctx, l.key)
		if errors.Is(err, ErrUserNotFound) {
			continue
		}
		return u, err
	}
	return User{}, ErrUserNotFound
}

// issueResetToken signs a reset token for u and records it with u's
// tokens, so that a password change revokes it with them.
func (s *Service) issueResetToken(ctx context.Context, u User) (string, error) {
	now := s.now().Truncate(time.Second)
	c := token.Claims{Issuer: s.issuer, IssuedAt: now, ExpiresAt: now.Add(s.recovery.TTL), ID: NewID()}
	c.Set(ClaimPasswordResetFor, u.Username)
	raw, err := s.signer.Sign(token.TypeReset, c)
	if err != nil {
		return "", fmt.Errorf("password recovery: sign token: %w", err)
	}
	rec := TokenRecord{JTI: c.ID, Subject: subjectOf(u), IssuedAt: now, ExpiresAt: c.ExpiresAt}
	if err := s.tokens.Record(ctx, rec); err != nil {
		return "", unavailable("password recovery: record token", err)
	}
	return raw, nil
}

func subjectOf(u User) string {
	if u.ID != "" {
		return u.ID
	}
	return u.Username
}

// ResetGrant is a verified password-reset token.
type ResetGrant struct {
	Username  string
	JTI       string
	ExpiresAt time.Time
}

// AuthenticateReset verifies a password-reset token: signed by Kisee,
// typed reset+jwt, unexpired, naming its user, and not revoked (a password
// change revokes the user's outstanding reset tokens). A valid identity
// token gives ErrIdentityToken; other refusals wrap a token.Err* reason,
// ErrRevoked or ErrUnavailable.
func (s *Service) AuthenticateReset(ctx context.Context, raw string) (ResetGrant, error) {
	c, err := s.resetVerifier.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrType) {
			if _, ierr := s.Authenticate(ctx, raw); ierr == nil {
				return ResetGrant{}, ErrIdentityToken
			}
		}
		return ResetGrant{}, err
	}
	username, _ := c.String(ClaimPasswordResetFor)
	if username == "" || c.ID == "" || c.Subject != "" {
		return ResetGrant{}, fmt.Errorf("%w: a reset token has %q and jti, and no sub", token.ErrMalformed, ClaimPasswordResetFor)
	}
	rec, err := s.tokens.Get(ctx, c.ID)
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return ResetGrant{}, fmt.Errorf("%w: unknown reset token", ErrRevoked)
	case err != nil:
		return ResetGrant{}, unavailable("check reset token", err)
	case rec.Revoked():
		return ResetGrant{}, ErrRevoked
	}
	return ResetGrant{Username: username, JTI: c.ID, ExpiresAt: c.ExpiresAt}, nil
}

// ResetPassword sets the password of username with a reset token. The
// token is spent atomically before the password changes, so two uses
// cannot both succeed; then every outstanding token of the user is
// revoked. Errors: ErrWrongUser, ErrCannotSetPassword, a *ValidationError,
// ErrResetTokenUsed, ErrUserNotFound, ErrUnavailable.
func (s *Service) ResetPassword(ctx context.Context, g ResetGrant, username, password string) error {
	if g.Username != username {
		return ErrWrongUser
	}
	setter, ok := s.backend.(PasswordSetter)
	if !ok {
		return ErrCannotSetPassword
	}
	u := User{ID: username, Username: username}
	if f, ok := s.backend.(UserFinder); ok {
		found, err := f.FindByUsername(ctx, username)
		if err != nil {
			if errors.Is(err, ErrUserNotFound) {
				return ErrUserNotFound
			}
			return unavailable("find user", err)
		}
		u = found
	}
	if err := s.passwords.Check(password, u.Username, u.Email); err != nil {
		return err
	}
	fresh, err := s.tokens.SpendResetToken(ctx, g.JTI, g.ExpiresAt)
	if err != nil {
		return unavailable("spend reset token", err)
	}
	if !fresh {
		return ErrResetTokenUsed
	}
	return s.setPassword(ctx, setter, u, password, "reset token")
}

// ChangePassword sets the password of username for u, who identified
// with their current password (Basic auth, through Identify). Errors:
// ErrWrongUser, ErrCannotSetPassword, a *ValidationError, ErrUnavailable.
func (s *Service) ChangePassword(ctx context.Context, u User, username, password string) error {
	if u.Username != username {
		return ErrWrongUser
	}
	setter, ok := s.backend.(PasswordSetter)
	if !ok {
		return ErrCannotSetPassword
	}
	if err := s.passwords.Check(password, u.Username, u.Email); err != nil {
		return err
	}
	return s.setPassword(ctx, setter, u, password, "current password")
}

// setPassword changes the password, then revokes every outstanding token
// of u (identity and reset tokens). The password change is what the
// caller asked: if only the revocation fails, it is logged as an error
// and the change stands (the tokens still expire with their TTL).
func (s *Service) setPassword(ctx context.Context, setter PasswordSetter, u User, password, via string) error {
	if err := setter.SetPassword(ctx, u.Username, password); err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return ErrUserNotFound
		}
		return unavailable("set password", err)
	}
	s.metrics.PasswordsChanged.Inc()
	if err := s.tokens.RevokeSubject(ctx, subjectOf(u), s.now()); err != nil {
		s.logger.ErrorContext(ctx, "password changed, but the user's tokens could not be revoked", "username", u.Username, "error", err)
		return nil
	}
	s.logger.InfoContext(ctx, "password changed; the user's tokens are revoked", "username", u.Username, "via", via)
	return nil
}
