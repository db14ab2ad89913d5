package kisee

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Counter is a metric that counts (a prometheus.Counter fits).
type Counter interface{ Inc() }

type noCounter struct{}

func (noCounter) Inc() {}

// Metrics are the counters the service increments.
type Metrics struct {
	LoginsSucceeded Counter
	LoginsFailed    Counter
	LoginsLocked    Counter
	TokensIssued    Counter
	// UsersRegistered counts self-registrations, PasswordsChanged password
	// changes through the API (reset token or Basic auth).
	UsersRegistered  Counter
	PasswordsChanged Counter
}

func (m *Metrics) fill() {
	for _, c := range []*Counter{&m.LoginsSucceeded, &m.LoginsFailed, &m.LoginsLocked, &m.TokensIssued, &m.UsersRegistered, &m.PasswordsChanged} {
		if *c == nil {
			*c = noCounter{}
		}
	}
}

// Service is Kisee's behaviour, independent of HTTP.
type Service struct {
	backend  Backend
	tokens   TokenStore
	signer   *token.Signer
	verifier *token.Verifier
	// resetVerifier accepts password-reset tokens only.
	resetVerifier *token.Verifier
	limiter       Limiter
	issuer        string
	ttl           time.Duration
	now           func() time.Time
	logger        *slog.Logger
	metrics       Metrics
	registration  bool
	passwords     *PasswordPolicy
	recovery      RecoveryConfig
	// health and backendHealth cache Health and BackendHealth.
	health, backendHealth healthCache
}

// Config is what a Service is built from.
type Config struct {
	Backend Backend
	Tokens  TokenStore
	Keys    token.KeyRing
	// LegacyES256K writes "ES256" in the header of secp256k1 tokens, and
	// accepts it, as the original services did.
	LegacyES256K bool
	Limiter      Limiter // nil: no brute-force protection
	Issuer       string
	TTL          time.Duration // identity token lifetime, default 1 h
	Now          func() time.Time
	Logger       *slog.Logger
	Metrics      Metrics
	// Registration opens self-registration (POST /users/), for backends
	// that can register users.
	Registration bool
	// Passwords judges new passwords; nil: NewPasswordPolicy().
	Passwords *PasswordPolicy
	// Recovery enables password recovery by email.
	Recovery RecoveryConfig
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Passwords == nil {
		cfg.Passwords = NewPasswordPolicy()
	}
	if cfg.Recovery.TTL == 0 {
		cfg.Recovery.TTL = DefaultResetTTL
	}
	cfg.Metrics.fill()
	return &Service{
		backend: cfg.Backend,
		tokens:  cfg.Tokens,
		signer:  token.NewSigner(cfg.Keys.Current, token.WithLegacyES256K(cfg.LegacyES256K)),
		verifier: token.NewVerifier(cfg.Keys.KeySet(), token.WithIssuer(cfg.Issuer), token.WithTypes(token.TypeJWT),
			token.AcceptLegacyES256K(cfg.LegacyES256K), token.WithClock(cfg.Now)),
		resetVerifier: token.NewVerifier(cfg.Keys.KeySet(), token.WithIssuer(cfg.Issuer), token.WithTypes(token.TypeReset),
			token.AcceptLegacyES256K(cfg.LegacyES256K), token.WithClock(cfg.Now)),
		limiter:      cfg.Limiter,
		issuer:       cfg.Issuer,
		ttl:          cfg.TTL,
		now:          cfg.Now,
		logger:       cfg.Logger,
		metrics:      cfg.Metrics,
		registration: cfg.Registration,
		passwords:    cfg.Passwords,
		recovery:     cfg.Recovery,
	}
}

// Backend returns the service's backend, for capability checks.
func (s *Service) Backend() Backend { return s.backend }

// Issuer returns the "iss" of the tokens the service signs.
func (s *Service) Issuer() string { return s.issuer }

// LockedError is returned when attempts are locked out.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Identify checks a username/password pair under brute-force protection:
// a lockout returns *LockedError, a wrong pair ErrInvalidCredentials, and
// a down backend ErrUnavailable. addr is the client's address. The
// attempt is counted before the backend is asked, and a password longer
// than MaxPasswordBytes fails without any hashing.
func (s *Service) Identify(ctx context.Context, username, password, addr string) (User, error) {
	account := s.accountName(username)
	if s.limiter != nil {
		retryAfter, err := s.limiter.Admit(ctx, account, addr)
		switch {
		case ctx.Err() != nil:
			return User{}, fmt.Errorf("identify: %w", ctx.Err())
		case err != nil:
			// Failing open: a down rate-limit store must not take login down.
			s.logger.WarnContext(ctx, "rate limiter unavailable; checking credentials without it", "error", err)
		case retryAfter > 0:
			s.metrics.LoginsLocked.Inc()
			s.logger.WarnContext(ctx, "login locked out", "account", username, "client", addr, "retry_after", retryAfter)
			return User{}, &LockedError{RetryAfter: retryAfter}
		}
	}
	var u User
	err := ErrInvalidCredentials
	if len(password) <= MaxPasswordBytes {
		u, err = s.backend.Identify(WithClientAddr(ctx, addr), username, password)
	}
	var upstreamLocked *LockedError
	if errors.As(err, &upstreamLocked) {
		// The backend's upstream (remote) locked this client out: pass its
		// 429 on; the attempt was not verified here.
		if s.limiter != nil {
			if lerr := s.limiter.Release(ctx, account, addr); lerr != nil {
				s.logger.WarnContext(ctx, "rate limiter: cannot release attempt", "error", lerr)
			}
		}
		s.metrics.LoginsLocked.Inc()
		return User{}, upstreamLocked
	}
	if err != nil {
		s.logger.DebugContext(ctx, "login refused by the backend", "account", username, "client", addr, "error", err)
		if errors.Is(err, ErrInvalidCredentials) {
			s.metrics.LoginsFailed.Inc()
			if s.limiter != nil {
				if lerr := s.limiter.Failure(ctx, account, addr); lerr != nil {
					s.logger.WarnContext(ctx, "rate limiter: cannot record failure", "error", lerr)
				}
			}
			return User{}, ErrInvalidCredentials
		}
		if s.limiter != nil {
			if lerr := s.limiter.Release(ctx, account, addr); lerr != nil {
				s.logger.WarnContext(ctx, "rate limiter: cannot release attempt", "error", lerr)
			}
		}
		return User{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if s.limiter != nil {
		if lerr := s.limiter.Success(ctx, account, addr); lerr != nil {
			s.logger.WarnContext(ctx, "rate limiter: cannot record success", "error", lerr)
		}
	}
	s.metrics.LoginsSucceeded.Inc()
	s.logger.DebugContext(ctx, "login accepted by the backend", "account", username, "subject", u.ID, "client", addr)
	return u, nil
}

type clientAddrKey struct{}

// WithClientAddr records the address of the client an identification is
// made for, so that a backend that asks another service (remote) can pass
// it on (X-Forwarded-For).
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddr returns the address recorded by WithClientAddr, or "".
func ClientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}

// accountName is the name the brute-force counters know username by: the
// backend's canonical form when it matches names loosely.
func (s *Service) accountName(username string) string {
	if c, ok := s.backend.(CanonicalNamer); ok {
		return c.CanonicalName(username)
	}
	return username
}

// Login identifies the pair and issues an identity token.
func (s *Service) Login(ctx context.Context, username, password, addr string) (string, TokenRecord, error) {
	u, err := s.Identify(ctx, username, password, addr)
	if err != nil {
		return "", TokenRecord{}, err
	}
	return s.Issue(ctx, u)
}

// Issue signs and records an identity token for u.
func (s *Service) Issue(ctx context.Context, u User) (string, TokenRecord, error) {
	now := s.now().Truncate(time.Second)
	c := token.Claims{Issuer: s.issuer, Subject: u.ID, IssuedAt: now, ExpiresAt: now.Add(s.ttl), ID: NewID()}
	for name, v := range u.Claims {
		if !token.IsRegistered(name) {
			c.Set(name, v)
		}
	}
	if u.Email != "" {
		c.Set("email", u.Email)
	}
	raw, err := s.signer.Sign(token.TypeJWT, c)
	if err != nil {
		return "", TokenRecord{}, fmt.Errorf("issue token: %w", err)
	}
	rec := TokenRecord{JTI: c.ID, Subject: u.ID, IssuedAt: now, ExpiresAt: c.ExpiresAt}
	if err := s.tokens.Record(ctx, rec); err != nil {
		return "", TokenRecord{}, fmt.Errorf("%w: record token: %v", ErrUnavailable, err)
	}
	s.metrics.TokensIssued.Inc()
	return raw, rec, nil
}

// ErrRevoked is returned for a token its owner revoked.
var ErrRevoked = errors.New("token revoked")

// Authenticate verifies an identity token Kisee issued and checks it was
// not revoked.
func (s *Service) Authenticate(ctx context.Context, raw string) (*token.Claims, error) {
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if c.Subject == "" || c.ID == "" {
		return nil, fmt.Errorf("%w: identity token without sub or jti", token.ErrMalformed)
	}
	rec, err := s.tokens.Get(ctx, c.ID)
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return nil, fmt.Errorf("%w: unknown token", ErrRevoked)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case rec.Revoked():
		return nil, ErrRevoked
	}
	return c, nil
}

// Principal is who a request acts as: the holder of one token, or a user
// who gave their password.
type Principal struct {
	Subject string
	// TokenID is set when the principal is a bearer token: it may act on
	// that token only.
	TokenID string
}

// TokenInfo returns the record of jti to its owner. Anyone else — and any
// unknown jti — gets ErrTokenNotFound, so ids of others cannot be probed.
func (s *Service) TokenInfo(ctx context.Context, p Principal, jti string) (TokenRecord, error) {
	if p.TokenID != "" && p.TokenID != jti {
		return TokenRecord{}, ErrTokenNotFound
	}
	// An id that is not UTF-8 or holds a NUL was never issued: it is not
	// found, without asking PostgreSQL, which refuses NUL in text (an error,
	// 503, rather than 404).
	if !PlausibleUsername(jti) {
		return TokenRecord{}, ErrTokenNotFound
	}
	rec, err := s.tokens.Get(ctx, jti)
	if err != nil {
		if errors.Is(err, ErrTokenNotFound) {
			return TokenRecord{}, err
		}
		return TokenRecord{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if rec.Subject != p.Subject {
		return TokenRecord{}, ErrTokenNotFound
	}
	return rec, nil
}

// RevokeToken revokes jti on behalf of its owner.
func (s *Service) RevokeToken(ctx context.Context, p Principal, jti string) error {
	if _, err := s.TokenInfo(ctx, p, jti); err != nil {
		return err
	}
	if err := s.tokens.Revoke(ctx, jti, s.now()); err != nil {
		return fmt.Errorf("%w: revoke: %v", ErrUnavailable, err)
	}
	return nil
}

// Health checks the token store and, if it can tell, the backend.
func (s *Service) Health(ctx context.Context) error {
	return s.health.get(ctx, func(ctx context.Context) error {
		if err := s.tokens.Ping(ctx); err != nil {
			return fmt.Errorf("token store: %w", err)
		}
		if err := s.BackendHealth(ctx); err != nil {
			return fmt.Errorf("backend: %w", err)
		}
		return nil
	})
}

// BackendHealth is the backend's own health check (nil for a backend
// without one), answered from a cache of HealthCacheTTL: /health and
// /status are public, and must not make every request a call to LDAP or
// to a remote service.
func (s *Service) BackendHealth(ctx context.Context) error {
	h, ok := s.backend.(HealthChecker)
	if !ok {
		return nil
	}
	return s.backendHealth.get(ctx, h.Health)
}

// HealthCacheTTL is how long a health check result is reused.
const HealthCacheTTL = 1500 * time.Millisecond

// healthCache keeps the last result of a check for HealthCacheTTL;
// concurrent callers during a check wait for it rather than start their
// own.
type healthCache struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

func (c *healthCache) get(ctx context.Context, check func(context.Context) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < HealthCacheTTL {
		return c.err
	}
	c.err = check(ctx)
	c.at = time.Now()
	return c.err
}

// NewID returns a random identifier of 128 bits, base64url encoded.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // cannot happen on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
