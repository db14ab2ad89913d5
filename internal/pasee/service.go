package pasee

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Limiter is the brute-force protection consulted around each login
// (implemented by internal/ratelimit).
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

// MaxPasswordBytes bounds the passwords Pasee forwards: a longer one is
// refused as a failed login without asking the provider.
const MaxPasswordBytes = 1024

// limiterAccount is the name the brute-force counters know a login by:
// the provider's name and the login folded to lower case with its spaces
// trimmed and collapsed, so that the variants a loosely matching provider
// (LDAP) takes for one account count as that account. Folding can only
// merge counters, never split them.
func limiterAccount(idp, login string) string {
	return idp + ":" + strings.ToLower(strings.Join(strings.Fields(login), " "))
}

// Config is what a Service is built from.
type Config struct {
	Store     Store
	Providers []Provider
	Keys      token.KeyRing
	// LegacyES256K labels secp256k1 tokens "ES256", as the original did.
	LegacyES256K bool
	Issuer       string
	Audience     string // "aud" of access tokens; empty: none
	AccessTTL    time.Duration
	RefreshTTL   time.Duration
	ReuseGrace   time.Duration
	Limiter      Limiter
	// Registration names the provider that receives forwarded
	// self-registrations and password recoveries ("" for none).
	Registration string
	Now          func() time.Time
	Logger       *slog.Logger
	// Metrics count logins, failures, refreshes and reuse (/metrics, /status).
	Metrics Metrics
}

// Service is Pasee's behaviour, independent of HTTP.
type Service struct {
	store        Store
	providers    map[string]Provider
	order        []Provider
	signer       *token.Signer
	access       *token.Verifier
	refresh      *token.Verifier
	issuer       string
	audience     string
	accessTTL    time.Duration
	refreshTTL   time.Duration
	grace        time.Duration
	limiter      Limiter
	registration string
	now          func() time.Time
	logger       *slog.Logger
	metrics      Metrics
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 720 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		store: cfg.Store, providers: map[string]Provider{}, order: cfg.Providers,
		signer: token.NewSigner(cfg.Keys.Current, token.WithLegacyES256K(cfg.LegacyES256K)),
		issuer: cfg.Issuer, audience: cfg.Audience,
		accessTTL: cfg.AccessTTL, refreshTTL: cfg.RefreshTTL, grace: cfg.ReuseGrace,
		limiter: cfg.Limiter, registration: cfg.Registration, now: cfg.Now, logger: cfg.Logger,
	}
	s.metrics = cfg.Metrics
	for _, p := range cfg.Providers {
		s.providers[p.Name()] = p
	}
	keys := cfg.Keys.KeySet()
	common := []token.VerifierOption{token.WithIssuer(cfg.Issuer), token.WithClock(cfg.Now), token.AcceptLegacyES256K(cfg.LegacyES256K)}
	accessOpts := append(slices.Clone(common), token.WithTypes(token.TypeAccess))
	if cfg.Audience != "" {
		accessOpts = append(accessOpts, token.WithAudience(cfg.Audience))
	}
	s.access = token.NewVerifier(keys, accessOpts...)
	s.refresh = token.NewVerifier(keys, append(slices.Clone(common), token.WithTypes(token.TypeRefresh))...)
	return s
}

// RegistrationProvider names the provider receiving forwarded registrations.
func (s *Service) RegistrationProvider() string { return s.registration }

// Store returns the service's store.
func (s *Service) Store() Store { return s.store }

// Providers returns the configured providers, in settings order.
func (s *Service) Providers() []Provider { return s.order }

// Provider returns the provider named name.
func (s *Service) Provider(name string) (Provider, bool) {
	p, ok := s.providers[name]
	return p, ok
}

// Pair is an access/refresh token pair.
type Pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`

	// Access is what AccessToken says, as signed: the OpenID token
	// endpoint's ID token repeats some of it, without decoding the token
	// it has just been given. Not part of the answer.
	Access *token.Claims `json:"-"`
}

// Errors of the service, mapped to statuses by the API.
var (
	ErrUnknownProvider  = errors.New("identity provider not implemented")
	ErrUnsupportedLogin = errors.New("this identity provider does not support this way of logging in")
	ErrBanned           = errors.New("user is banned")
	ErrForbidden        = errors.New("not authorized")
	ErrInvalidName      = errors.New("invalid name")
	ErrReuseDetected    = errors.New("refresh token reuse detected: the session is revoked")
	ErrSessionRevoked   = errors.New("session revoked")
)

// LockedError is returned when login attempts are locked out.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// UserName names the user subject of provider: "kisee" + "alice" → "kisee-alice".
func UserName(provider, subject string) string { return provider + "-" + subject }

// Login forwards a login and password to a provider and, if it vouches for
// the user, opens a session.
func (s *Service) Login(ctx context.Context, idp, login, password, addr string) (_ Pair, err error) {
	defer func() { s.metrics.countLogin(err) }()
	p, ok := s.providers[idp]
	if !ok {
		return Pair{}, ErrUnknownProvider
	}
	pl, ok := p.(PasswordLogin)
	if !ok {
		return Pair{}, ErrUnsupportedLogin
	}
	account := limiterAccount(idp, login)
	if s.limiter != nil {
		retryAfter, err := s.limiter.Admit(ctx, account, addr)
		switch {
		case ctx.Err() != nil:
			return Pair{}, fmt.Errorf("login: %w", ctx.Err())
		case err != nil:
			s.logger.WarnContext(ctx, "rate limiter unavailable; checking credentials without it", "error", err)
		case retryAfter > 0:
			s.logger.WarnContext(ctx, "login locked out", "account", account, "client", addr, "retry_after", retryAfter)
			return Pair{}, &LockedError{RetryAfter: retryAfter}
		}
	}
	var id Identity
	err = ErrProviderRefused
	if len(password) <= MaxPasswordBytes {
		id, err = pl.Login(WithClientAddr(ctx, addr), login, password)
	}
	if err != nil {
		s.logger.DebugContext(ctx, "login refused by the provider", "idp", idp, "account", login, "client", addr, "error", err)
	} else {
		s.logger.DebugContext(ctx, "login accepted by the provider", "idp", idp, "account", login, "subject", id.Subject, "client", addr)
	}
	if s.limiter != nil {
		var lerr error
		switch {
		case err == nil:
			lerr = s.limiter.Success(ctx, account, addr)
		case errors.Is(err, ErrProviderRefused):
			lerr = s.limiter.Failure(ctx, account, addr)
		default:
			lerr = s.limiter.Release(ctx, account, addr)
		}
		if lerr != nil {
			s.logger.WarnContext(ctx, "rate limiter: cannot record attempt", "error", lerr)
		}
	}
	if err != nil {
		return Pair{}, err
	}
	return s.open(ctx, idp, id)
}

// LoginWithToken opens a session for the holder of a token issued by the
// provider idp.
func (s *Service) LoginWithToken(ctx context.Context, idp, raw string) (_ Pair, err error) {
	defer func() { s.metrics.countLogin(err) }()
	p, ok := s.providers[idp]
	if !ok {
		return Pair{}, ErrUnknownProvider
	}
	tl, ok := p.(TokenLogin)
	if !ok {
		return Pair{}, ErrUnsupportedLogin
	}
	id, err := tl.VerifyToken(ctx, raw)
	if err != nil {
		return Pair{}, err
	}
	return s.open(ctx, idp, id)
}

// LoginWithIdentity opens a session for an identity a provider vouched
// for by other means (the OAuth2/OIDC callback).
func (s *Service) LoginWithIdentity(ctx context.Context, idp string, id Identity) (_ Pair, err error) {
	defer func() { s.metrics.countLogin(err) }()
	if _, ok := s.providers[idp]; !ok {
		return Pair{}, ErrUnknownProvider
	}
	return s.open(ctx, idp, id)
}

// open records the login and starts a refresh session.
func (s *Service) open(ctx context.Context, idp string, id Identity) (Pair, error) {
	if err := ValidateSubject(id.Subject); err != nil {
		return Pair{}, fmt.Errorf("%w: %v", ErrProviderBadAnswer, err)
	}
	name := UserName(idp, id.Subject)
	now := s.now().Truncate(time.Second)
	u, err := s.store.RecordLogin(ctx, name, now)
	if err != nil {
		return Pair{}, fmt.Errorf("record login: %w", err)
	}
	if u.IsBanned {
		s.logger.DebugContext(ctx, "login refused: user is banned", "user", name)
		return Pair{}, ErrBanned
	}
	groups, err := s.store.UserGroups(ctx, name)
	if err != nil {
		return Pair{}, fmt.Errorf("read groups: %w", err)
	}
	s.logger.DebugContext(ctx, "session opened", "user", name, "groups", groups)
	sess := Session{
		ID: newID(), User: name, IDP: idp, Claims: id.Claims,
		RefreshJTI: newID(), AccessJTI: newID(), IssuedAt: now, ExpiresAt: now.Add(s.refreshTTL), CreatedAt: now,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return Pair{}, fmt.Errorf("create session: %w", err)
	}
	return s.sign(sess, groups)
}

// sign writes the pair of sess as it currently stands.
func (s *Service) sign(sess Session, groups []string) (Pair, error) {
	access := token.Claims{Issuer: s.issuer, Subject: sess.User, IssuedAt: sess.IssuedAt, ExpiresAt: sess.IssuedAt.Add(s.accessTTL), ID: sess.AccessJTI,
		Extra: make(map[string]any, len(sess.Claims)+3)}
	if s.audience != "" {
		access.Audience = []string{s.audience}
	}
	for k, v := range sess.Claims {
		if !token.IsRegistered(k) {
			access.Set(k, v)
		}
	}
	if groups == nil {
		groups = []string{}
	}
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	access.Set("groups", sorted)
	access.Set("idp", sess.IDP)
	access.Set("sid", sess.ID)
	at, err := s.signer.Sign(token.TypeAccess, access)
	if err != nil {
		return Pair{}, fmt.Errorf("sign access token: %w", err)
	}
	refresh := token.Claims{Issuer: s.issuer, Subject: sess.User, IssuedAt: sess.IssuedAt, ExpiresAt: sess.ExpiresAt, ID: sess.RefreshJTI}
	refresh.Set("sid", sess.ID)
	refresh.Set("refresh_token", true)
	// A session opened for an OpenID client names it in its refresh
	// tokens too, so that the token endpoint refuses another client's.
	for _, k := range []string{"client_id", "scope"} {
		if v, ok := sess.Claims[k]; ok {
			refresh.Set(k, v)
		}
	}
	rt, err := s.signer.Sign(token.TypeRefresh, refresh)
	if err != nil {
		return Pair{}, fmt.Errorf("sign refresh token: %w", err)
	}
	return Pair{AccessToken: at, RefreshToken: rt, TokenType: "Bearer", ExpiresIn: int(s.accessTTL / time.Second), Access: &access}, nil
}

// verifyRefresh checks a refresh token and returns its session id and jti.
func (s *Service) verifyRefresh(ctx context.Context, raw string) (*token.Claims, string, error) {
	c, err := s.refresh.Verify(ctx, raw)
	if err != nil {
		return nil, "", err
	}
	sid, _ := c.String("sid")
	if !c.Bool("refresh_token") || sid == "" || c.ID == "" || c.Subject == "" {
		return nil, "", fmt.Errorf("%w: not a refresh token", token.ErrType)
	}
	return c, sid, nil
}

// Refresh spends a refresh token for a new pair; see Store.Rotate for reuse.
func (s *Service) Refresh(ctx context.Context, raw string) (Pair, error) {
	return s.RefreshIf(ctx, raw, nil)
}

// RefreshIf is Refresh for a caller that must first accept the verified
// token's claims (the OpenID token endpoint checks its client_id): when
// allow returns an error, the token is left unspent and the error
// returned.
func (s *Service) RefreshIf(ctx context.Context, raw string, allow func(*token.Claims) error) (Pair, error) {
	c, sid, err := s.verifyRefresh(ctx, raw)
	if err != nil {
		return Pair{}, err
	}
	if allow != nil {
		if err := allow(c); err != nil {
			return Pair{}, err
		}
	}
	// The rotation reads what the new pair needs (the user's groups) in the
	// same statement: one round trip, and nothing left to fail once the
	// token is spent (a 503 after the rotation would make the client's
	// retry count as reuse and revoke the session). A banned user needs no
	// read: banning revokes the sessions, and the rotation refuses a banned
	// user's session anyway.
	// The grace window is measured on the precise clock; token times are whole seconds.
	now := s.now()
	issued := now.Truncate(time.Second)
	next := NextTokens{RefreshJTI: newID(), AccessJTI: newID(), IssuedAt: issued, ExpiresAt: issued.Add(s.refreshTTL)}
	outcome, sess, groups, err := s.store.RotateAndReadGroups(ctx, sid, c.ID, next, now, s.grace)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Pair{}, ErrSessionRevoked
		}
		return Pair{}, fmt.Errorf("rotate: %w", err)
	}
	switch outcome {
	case ReuseDetected:
		inc(s.metrics.ReuseDetected)
		s.logger.WarnContext(ctx, "refresh token reuse detected: session revoked", "user", sess.User, "sid", sid)
		return Pair{}, ErrReuseDetected
	case SessionRevoked:
		return Pair{}, ErrSessionRevoked
	}
	if sess.User != c.Subject {
		return Pair{}, fmt.Errorf("%w: the session is another user's", ErrSessionRevoked)
	}
	inc(s.metrics.Refreshes)
	return s.sign(sess, groups)
}

// Logout revokes the session of a refresh token.
func (s *Service) Logout(ctx context.Context, raw string) error {
	c, sid, err := s.verifyRefresh(ctx, raw)
	if err != nil {
		return err
	}
	if err := s.store.RevokeSession(ctx, c.Subject, sid, s.now()); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Authenticate verifies an access token and returns the caller's name.
// Rights are never read from the token: the store is asked each time.
func (s *Service) Authenticate(ctx context.Context, raw string) (*token.Claims, error) {
	c, err := s.access.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if c.Bool("refresh_token") || c.Subject == "" {
		return nil, fmt.Errorf("%w: not an access token", token.ErrType)
	}
	return c, nil
}

// Caller authenticates an access token for Pasee's own API, refusing
// banned and deleted users at once (a token alone outlives both).
func (s *Service) Caller(ctx context.Context, raw string) (string, error) {
	c, err := s.Authenticate(ctx, raw)
	if err != nil {
		return "", err
	}
	// Ban and session in one query: this runs on every API call.
	sid, hasSession := c.String("sid")
	banned, live, err := s.store.CallerStatus(ctx, c.Subject, sid)
	if errors.Is(err, ErrUserNotFound) {
		return "", fmt.Errorf("%w: the user no longer exists", token.ErrUnknownKey)
	}
	if err != nil {
		return "", err
	}
	if banned {
		return "", ErrBanned
	}
	// A logout or a revocation ends the access tokens of the session at
	// once on Pasee's own API (downstream services learn it by
	// introspection, or when the token expires).
	if hasSession && !live {
		return "", ErrSessionRevoked
	}
	return c.Subject, nil
}

// Introspect answers RFC 7662: the claims of an active access or refresh
// token, or inactive. A token whose session was revoked or whose user is
// banned is inactive.
func (s *Service) Introspect(ctx context.Context, raw string) (map[string]any, error) {
	inactive := map[string]any{"active": false}
	// Authenticate, not s.access.Verify alone: an access token carrying
	// refresh_token is refused by every route, so it is not active either.
	c, err := s.Authenticate(ctx, raw)
	kind := "access_token"
	if err != nil {
		if c, _, err = s.verifyRefresh(ctx, raw); err != nil {
			if errors.Is(err, token.ErrKeySetUnavailable) {
				return nil, err
			}
			return inactive, nil
		}
		kind = "refresh_token"
	}
	if sid, ok := c.String("sid"); ok {
		sess, err := s.store.GetSession(ctx, sid)
		if errors.Is(err, ErrNotFound) {
			return inactive, nil
		}
		if err != nil {
			return nil, err
		}
		if !sess.RevokedAt.IsZero() || (kind == "refresh_token" && sess.RefreshJTI != c.ID) {
			return inactive, nil
		}
	}
	u, err := s.store.GetUser(ctx, c.Subject)
	if errors.Is(err, ErrUserNotFound) || (err == nil && u.IsBanned) {
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]any{"active": true, "token_type": kind, "iss": c.Issuer, "sub": c.Subject, "jti": c.ID,
		"iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix(), "username": c.Subject}
	for k, v := range c.Extra {
		out[k] = v
	}
	if len(c.Audience) > 0 {
		out["aud"] = c.Audience
	}
	return out, nil
}

// newID returns 128 random bits, base64url encoded.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// MaxUserName bounds user names.
const MaxUserName = 255

// ValidateSubject checks a provider's subject: printable UTF-8 without
// whitespace, bounded, its letters from one script (see mixedScripts).
func ValidateSubject(sub string) error {
	if sub == "" {
		return errors.New("empty subject")
	}
	if len(sub) > MaxUserName-65 || !utf8.ValidString(sub) {
		return errors.New("subject too long or not UTF-8")
	}
	for _, r := range sub {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '/' || !unicode.IsPrint(r) {
			return fmt.Errorf("subject holds a forbidden character %q", r)
		}
	}
	if a, b, mixed := mixedScripts(sub); mixed {
		return fmt.Errorf("subject mixes %s and %s letters, so it could pass for another name", a, b)
	}
	return nil
}

// mixedScripts reports whether the letters of s come from more than one
// script, naming two of them: "kisee-аlice" (a Cyrillic "а" before Latin
// "lice") would be a new user that an administrator reading the member
// list takes for kisee-alice. Digits,
// punctuation and combining marks (scripts Common and Inherited) belong to
// every script. As in Unicode TS #39's "highly restrictive" level, Latin
// may be mixed with Han and Hiragana/Katakana, Bopomofo or Hangul, as
// Japanese, Chinese and Korean names are written. A name confusable as a
// whole ("асе", all Cyrillic, for "ace") is not detected.
func mixedScripts(s string) (first, second string, mixed bool) {
	seen := map[string]bool{}
	for _, r := range s {
		if name := scriptOf(r); name != "" && !seen[name] {
			seen[name] = true
			if first == "" {
				first = name
			} else if second == "" {
				second = name
			}
		}
	}
	if len(seen) <= 1 {
		return "", "", false
	}
	for _, allowed := range [][]string{{"Latin", "Han", "Hiragana", "Katakana"}, {"Latin", "Han", "Bopomofo"}, {"Latin", "Han", "Hangul"}} {
		n := 0
		for name := range seen {
			if slices.Contains(allowed, name) {
				n++
			}
		}
		if n == len(seen) {
			return "", "", false
		}
	}
	return first, second, true
}

// scriptOf returns the Unicode script of letter r, "" for other runes and
// for the scripts shared by all (Common, Inherited).
func scriptOf(r rune) string {
	switch {
	case r < utf8.RuneSelf:
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	case !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r):
		return ""
	case unicode.Is(unicode.Latin, r):
		return "Latin"
	case unicode.Is(unicode.Cyrillic, r):
		return "Cyrillic"
	case unicode.Is(unicode.Greek, r):
		return "Greek"
	case unicode.Is(unicode.Common, r), unicode.Is(unicode.Inherited, r):
		return ""
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// ValidateUserName checks a user name given to the API: "<provider>-<subject>"
// with a configured provider.
func (s *Service) ValidateUserName(name string) error {
	return ValidateUserName(name, func(idp string) bool { _, ok := s.providers[idp]; return ok })
}

// ValidateUserName checks that name is "<provider>-<subject>" with a
// provider known reports as configured, and a valid subject.
func ValidateUserName(name string, known func(provider string) bool) error {
	idp, sub, ok := strings.Cut(name, "-")
	if !ok || idp == "" {
		return fmt.Errorf("%w: user names are <provider>-<subject>, like kisee-alice", ErrInvalidName)
	}
	if !known(idp) {
		return fmt.Errorf("%w: %q is not a configured identity provider", ErrInvalidName, idp)
	}
	if err := ValidateSubject(sub); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	return nil
}
