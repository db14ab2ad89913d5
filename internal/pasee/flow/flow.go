// Package flow is Pasee's login flow for browser apps with oauth2 and oidc
// providers:
//
//  1. The app sends the browser to GET /tokens/?idp=X&redirect_uri=U&state=S.
//     U must be one of [cors] allowed_redirect_uris, compared exactly, or
//     Pasee answers 400 and redirects nowhere. Pasee records a single-use
//     state (PKCE verifier, nonce, U, S), signs a short-lived token naming
//     it, and redirects to the provider with that token as state and the
//     verifier's S256 challenge.
//  2. The provider sends the browser back to <hostname>/tokens/?idp=X with
//     code and state. Pasee checks the signature and expiry of the state,
//     spends it (a replay is refused), redeems the code with the verifier,
//     and learns who logged in.
//  3. Pasee redirects to U?code=C&state=S with a one-time code C, valid 60 s,
//     which the app redeems once with POST /tokens/?grant=code {"code": C}
//     for a token pair. Without redirect_uri, step 2 answers the pair as
//     JSON instead.
//
// The app may bind its code to itself with its own PKCE: code_challenge and
// code_challenge_method=S256 in step 1, code_verifier in step 3. A user who
// declines at the provider is sent back to U?error=access_denied&state=S.
//
// States and codes live in Pasee's database, so that any instance sharing
// it completes a flow another started.
package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/api"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// StateType is the "typ" of the signed states Pasee sends to providers, so
// that no other token of Pasee passes for one.
const StateType = "oauth-state+jwt"

// Defaults of Config.
const (
	DefaultStateTTL = 10 * time.Minute
	DefaultCodeTTL  = 60 * time.Second
	// MaxAppState bounds the app's state parameter.
	MaxAppState = 1024
)

// Problem titles of the flow (clients match on them).
const (
	TitleRedirectNotAllowed = "Redirect URI not allowed"
	TitleInvalidRequest     = "Invalid request"
	TitleInvalidState       = "Invalid state"
	TitleStateExpired       = "State expired"
	TitleStateUsed          = "State already used"
	TitleMissingCode        = "Missing code"
	TitleInvalidCode        = "Invalid code"
	TitleCodeExpired        = "Code expired"
	TitleCodeUsed           = "Code already used"
	TitleInvalidVerifier    = "Invalid code verifier"
	TitleAccessDenied       = "Access denied"
)

// Config is what a Flow is built from.
type Config struct {
	Service *pasee.Service
	Storage Storage
	// Keys sign and verify states: every instance sharing the database must
	// share them (as they must to verify each other's tokens).
	Keys         token.KeyRing
	LegacyES256K bool
	Issuer       string
	// PublicURL is Pasee's hostname: callbacks are <PublicURL>/tokens/?idp=<name>.
	PublicURL           string
	AllowedRedirectURIs []string
	StateTTL            time.Duration // default DefaultStateTTL
	CodeTTL             time.Duration // default DefaultCodeTTL
	Now                 func() time.Time
	Logger              *slog.Logger
	// Limiter counts flow starts per client address (nil: none).
	Limiter RequestLimiter
}

// RequestLimiter counts requests of a kind per client address
// (implemented by internal/ratelimit).
type RequestLimiter interface {
	Take(ctx context.Context, bucket, addr string, limit int, window time.Duration) (retryAfter time.Duration, err error)
}

// Flow starts are limited per client address: each writes a state row
// kept for StateTTL, and anyone may ask for one.
const (
	StartsPerAddress = 30
	StartWindow      = 10 * time.Minute
)

// Flow serves the browser flow; it implements api.RedirectFlow.
type Flow struct {
	svc      *pasee.Service
	store    Storage
	signer   *token.Signer
	states   *token.Verifier
	refresh  *token.Verifier
	issuer   string
	public   string
	allowed  []string
	stateTTL time.Duration
	codeTTL  time.Duration
	now      func() time.Time
	logger   *slog.Logger
	limiter  RequestLimiter
}

var _ api.RedirectFlow = (*Flow)(nil)

// New returns the flow of cfg.
func New(cfg Config) *Flow {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	keys := cfg.Keys.KeySet()
	return &Flow{
		svc: cfg.Service, store: cfg.Storage,
		signer: token.NewSigner(cfg.Keys.Current, token.WithLegacyES256K(cfg.LegacyES256K)),
		states: token.NewVerifier(keys, token.WithTypes(StateType), token.WithIssuer(cfg.Issuer),
			token.WithLeeway(0), token.WithClock(cfg.Now), token.AcceptLegacyES256K(cfg.LegacyES256K)),
		refresh: token.NewVerifier(keys, token.WithTypes(token.TypeRefresh), token.WithIssuer(cfg.Issuer),
			token.WithClock(cfg.Now), token.AcceptLegacyES256K(cfg.LegacyES256K)),
		issuer: cfg.Issuer, public: strings.TrimSuffix(cfg.PublicURL, "/"),
		allowed:  slices.Clone(cfg.AllowedRedirectURIs),
		stateTTL: or(cfg.StateTTL, DefaultStateTTL), codeTTL: or(cfg.CodeTTL, DefaultCodeTTL),
		now: cfg.Now, logger: cfg.Logger, limiter: cfg.Limiter,
	}
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CallbackURL is the URL registered at the provider idp.
func (f *Flow) CallbackURL(idp string) string {
	return f.public + "/tokens/?idp=" + url.QueryEscape(idp)
}

// random returns n random bytes, base64url encoded.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// s256 is the PKCE S256 challenge of verifier (RFC 7636 4.2).
func s256(verifier string) string { return xoauth2.S256ChallengeFromVerifier(verifier) }

var challengeSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// once returns the query parameter name, refusing it repeated: two values
// would leave the meaning to whoever reads first.
func once(q url.Values, names ...string) error {
	for _, name := range names {
		if len(q[name]) > 1 {
			return web.BadRequest(TitleInvalidRequest, fmt.Sprintf("The %s parameter is repeated; give it once.", name))
		}
	}
	return nil
}

func (f *Flow) provider(idp string) (pasee.RedirectLogin, error) {
	p, ok := f.svc.Provider(idp)
	if !ok {
		return nil, web.BadRequest("Identity provider not implemented", fmt.Sprintf("No identity provider is named %q.", idp))
	}
	rl, ok := p.(pasee.RedirectLogin)
	if !ok {
		return nil, web.BadRequest("Login method not supported", idp+" does not log in through a browser redirect; GET /tokens/ says how it does.")
	}
	return rl, nil
}

// Start implements api.RedirectFlow: GET /tokens/?idp=X[&redirect_uri=U][&state=S]
// [&code_challenge=C&code_challenge_method=S256] sends the browser to X.
func (f *Flow) Start(c echo.Context, idp string) error {
	q := c.QueryParams()
	if err := once(q, "idp", "redirect_uri", "state", "code_challenge", "code_challenge_method"); err != nil {
		return err
	}
	p, err := f.provider(idp)
	if err != nil {
		return err
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI != "" && !slices.Contains(f.allowed, redirectURI) {
		// Never redirect to an address the operator did not list: the code
		// would go to whoever wrote the link (open redirect).
		return web.BadRequest(TitleRedirectNotAllowed,
			"redirect_uri must be exactly one of [cors] allowed_redirect_uris (compared as strings); Pasee redirects nowhere else.")
	}
	appState := q.Get("state")
	if len(appState) > MaxAppState {
		return web.BadRequest(TitleInvalidRequest, fmt.Sprintf("state is limited to %d bytes.", MaxAppState))
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return web.BadRequest(TitleInvalidRequest, "code_challenge_method without code_challenge.")
	case challenge != "" && method != "S256":
		return web.BadRequest(TitleInvalidRequest, "code_challenge_method must be S256 (plain is not accepted).")
	case challenge != "" && !challengeSyntax.MatchString(challenge):
		return web.BadRequest(TitleInvalidRequest, "code_challenge must be the base64url SHA-256 of the code verifier: 43 characters.")
	}
	return f.begin(c, p, idp, redirectURI, appState, challenge)
}

// Begin starts the flow of idp for Pasee's own pages (the OpenID
// Provider's login page): the browser comes back to redirectURI, which must
// be allowed, with appState and a one-time code bound to the S256
// challenge.
func (f *Flow) Begin(c echo.Context, idp, redirectURI, appState, challenge string) error {
	p, err := f.provider(idp)
	if err != nil {
		return err
	}
	if !slices.Contains(f.allowed, redirectURI) || !challengeSyntax.MatchString(challenge) || len(appState) > MaxAppState {
		return fmt.Errorf("flow: Begin called with a redirect URI not allowed or a bad challenge or state")
	}
	return f.begin(c, p, idp, redirectURI, appState, challenge)
}

func (f *Flow) begin(c echo.Context, p pasee.RedirectLogin, idp, redirectURI, appState, challenge string) error {
	ctx := c.Request().Context()
	if f.limiter != nil {
		retryAfter, err := f.limiter.Take(ctx, "flow-start", c.RealIP(), StartsPerAddress, StartWindow)
		switch {
		case err != nil:
			f.logger.WarnContext(ctx, "rate limiter unavailable; flow start not limited", "error", err)
		case retryAfter > 0:
			return web.TooManyRequests("Too many logins started from this address; retry later.", retryAfter)
		}
	}
	now := f.now().Truncate(time.Second)
	st := State{ID: random(18), IDP: idp, Verifier: xoauth2.GenerateVerifier(), Nonce: random(18),
		RedirectURI: redirectURI, AppState: appState, AppChallenge: challenge, CreatedAt: now, ExpiresAt: now.Add(f.stateTTL)}
	claims := token.Claims{Issuer: f.issuer, ID: st.ID, IssuedAt: now, ExpiresAt: st.ExpiresAt}
	claims.Set("idp", idp)
	signed, err := f.signer.Sign(StateType, claims)
	if err != nil {
		return fmt.Errorf("sign state: %w", err)
	}
	to, err := p.AuthCodeURL(ctx, signed, s256(st.Verifier), st.Nonce, f.CallbackURL(idp))
	if err != nil {
		return f.providerProblem(err, idp)
	}
	if err := f.store.SaveState(ctx, st); err != nil {
		if errors.Is(err, ErrTooManyPending) {
			f.logger.WarnContext(ctx, "login flow refused: the cap of pending states is reached", "cap", DefaultMaxPendingStates)
			return web.ServiceUnavailable("Too many logins in progress", "Too many logins are in progress; retry in a minute.").WithHeader("Retry-After", "60")
		}
		return api.ProviderProblem(err, idp)
	}
	return c.Redirect(http.StatusFound, to)
}

// Callback implements api.RedirectFlow: the provider sends the browser
// back with code (or error) and Pasee's state.
func (f *Flow) Callback(c echo.Context, idp string) error {
	q := c.QueryParams()
	if err := once(q, "idp", "state", "code", "error"); err != nil {
		return err
	}
	p, err := f.provider(idp)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := f.takeState(ctx, idp, q.Get("state"))
	if err != nil {
		return err
	}
	if e := q.Get("error"); e != "" {
		return f.providerError(c, idp, st, e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return web.BadRequest(TitleInvalidRequest, "The provider returned neither code nor error.")
	}
	id, err := p.Exchange(ctx, code, st.Verifier, st.Nonce, f.CallbackURL(idp))
	if err != nil {
		f.logger.WarnContext(ctx, "browser login failed at the provider", "idp", idp, "error", err)
		return f.providerProblem(err, idp)
	}
	if err := pasee.ValidateSubject(id.Subject); err != nil {
		return f.providerProblem(fmt.Errorf("%w: %s gave an unusable user id: %v", pasee.ErrProviderBadAnswer, idp, err), idp)
	}
	if st.RedirectURI == "" {
		pair, err := f.svc.LoginWithIdentity(ctx, idp, id)
		if err != nil {
			return api.ProviderProblem(err, idp)
		}
		f.logger.InfoContext(ctx, "browser login", "idp", idp, "user", pasee.UserName(idp, id.Subject), "answer", "json")
		return api.WritePair(c, pair)
	}
	now := f.now()
	oneTime := random(32)
	err = f.store.SaveCode(ctx, Code{Hash: hashCode(oneTime), IDP: idp, Identity: id, AppChallenge: st.AppChallenge, CreatedAt: now, ExpiresAt: now.Add(f.codeTTL)})
	if err != nil {
		return api.ProviderProblem(err, idp)
	}
	f.logger.InfoContext(ctx, "browser login", "idp", idp, "user", pasee.UserName(idp, id.Subject), "answer", "code")
	back := url.Values{"code": {oneTime}}
	if st.AppState != "" {
		back.Set("state", st.AppState)
	}
	return c.Redirect(http.StatusFound, withParams(st.RedirectURI, back))
}

// takeState verifies Pasee's signed state and spends it.
func (f *Flow) takeState(ctx context.Context, idp, raw string) (State, error) {
	if raw == "" {
		return State{}, web.BadRequest(TitleInvalidState, "The callback carries no state.")
	}
	claims, err := f.states.Verify(ctx, raw)
	if errors.Is(err, token.ErrExpired) {
		return State{}, web.BadRequest(TitleStateExpired, fmt.Sprintf("This login took longer than %s; start again from the app.", f.stateTTL))
	}
	if err != nil {
		return State{}, web.BadRequest(TitleInvalidState, "The state is not one Pasee issued: start again from the app.")
	}
	if got, _ := claims.String("idp"); got != idp || claims.ID == "" {
		return State{}, web.BadRequest(TitleInvalidState, "The state was issued for another identity provider.")
	}
	st, err := f.store.TakeState(ctx, claims.ID, f.now())
	switch {
	case errors.Is(err, ErrUsed):
		f.logger.WarnContext(ctx, "browser login: replayed state", "idp", idp)
		return State{}, web.BadRequest(TitleStateUsed, "This login was already completed; a state works once. Start again from the app.")
	case errors.Is(err, ErrExpired):
		return State{}, web.BadRequest(TitleStateExpired, fmt.Sprintf("This login took longer than %s; start again from the app.", f.stateTTL))
	case errors.Is(err, ErrNotFound):
		return State{}, web.BadRequest(TitleInvalidState, "Pasee has no record of this state: start again from the app.")
	case err != nil:
		return State{}, api.ProviderProblem(err, idp)
	case st.IDP != idp:
		return State{}, web.BadRequest(TitleInvalidState, "The state was issued for another identity provider.")
	}
	return st, nil
}

// providerError handles an error the provider sent back instead of a code
// (RFC 6749 4.1.2.1).
func (f *Flow) providerError(c echo.Context, idp string, st State, code, desc string) error {
	if code == "access_denied" {
		f.logger.InfoContext(c.Request().Context(), "browser login declined by the user", "idp", idp)
		if st.RedirectURI != "" {
			back := url.Values{"error": {"access_denied"}}
			if st.AppState != "" {
				back.Set("state", st.AppState)
			}
			return c.Redirect(http.StatusFound, withParams(st.RedirectURI, back))
		}
		return web.Forbidden(TitleAccessDenied, "The user declined at "+idp+".")
	}
	reason := code
	if d := oauth2.Clip(desc); d != "" {
		reason += ": " + d
	}
	if code == "temporarily_unavailable" {
		return f.providerProblem(fmt.Errorf("%w: %s is temporarily unavailable (%s)", pasee.ErrProviderUnavailable, idp, reason), idp)
	}
	return f.providerProblem(fmt.Errorf("%w: %s refused the authorization request (%s)", pasee.ErrProviderBadAnswer, idp, reason), idp)
}

// providerProblem maps a provider failure; unlike a password login, the
// provider's own reason is shown (it tells the operator what to fix: a
// PKCE mismatch, wrong client credentials, an id_token for another
// audience). It never holds a code, verifier, token or secret.
func (f *Flow) providerProblem(err error, idp string) error {
	switch {
	case errors.Is(err, pasee.ErrProviderRefused):
		return web.Forbidden("Can not authenticate on "+idp, reasonOf(err, pasee.ErrProviderRefused)).WithCause(err)
	case errors.Is(err, pasee.ErrProviderBadAnswer):
		return web.NewProblem(http.StatusBadGateway, "Bad answer from "+idp, reasonOf(err, pasee.ErrProviderBadAnswer)).WithCause(err)
	}
	return api.ProviderProblem(err, idp)
}

// reasonOf is err's message without its sentinel's prefix.
func reasonOf(err, sentinel error) string {
	msg := strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
	if msg == "" {
		return sentinel.Error()
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// withParams adds params to the app's redirect URI, which may have a query.
func withParams(base string, params url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + params.Encode()
}

type redeemBody struct {
	Code         *string `json:"code"`
	CodeVerifier *string `json:"code_verifier"`
}

// Redeem implements api.RedirectFlow: POST /tokens/?grant=code {"code": ...}
// exchanges a one-time code for a token pair, once, within its 60 s.
func (f *Flow) Redeem(c echo.Context) error {
	var body redeemBody
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	if body.Code == nil || *body.Code == "" {
		return web.BadRequest(TitleMissingCode, `Send {"code": "<the code Pasee gave your redirect_uri>"}.`)
	}
	ctx := c.Request().Context()
	now := f.now()
	hash := hashCode(*body.Code)
	code, err := f.store.SpendCode(ctx, hash, now)
	switch {
	case errors.Is(err, ErrUsed):
		f.revokeReplayed(ctx, code, now)
		return web.BadRequest(TitleCodeUsed, "This code was already redeemed; a code works once. The session it opened is revoked: log in again.")
	case errors.Is(err, ErrExpired):
		return web.BadRequest(TitleCodeExpired, fmt.Sprintf("Codes must be redeemed within %s of the redirection; log in again.", f.codeTTL))
	case errors.Is(err, ErrNotFound):
		return web.BadRequest(TitleInvalidCode, "Pasee did not issue this code.")
	case err != nil:
		return api.ProviderProblem(err, "")
	}
	if code.AppChallenge != "" {
		v := ""
		if body.CodeVerifier != nil {
			v = *body.CodeVerifier
		}
		if v == "" || subtle.ConstantTimeCompare([]byte(s256(v)), []byte(code.AppChallenge)) != 1 {
			return web.BadRequest(TitleInvalidVerifier, "The login started with a code_challenge: send the matching code_verifier. The code is now spent; log in again.")
		}
	}
	pair, err := f.svc.LoginWithIdentity(ctx, code.IDP, code.Identity)
	if err != nil {
		return api.ProviderProblem(err, code.IDP)
	}
	if rc, err := f.refresh.Verify(ctx, pair.RefreshToken); err == nil {
		if sid, _ := rc.String("sid"); sid != "" {
			if err := f.store.SetCodeSession(ctx, hash, sid); err != nil {
				f.logger.WarnContext(ctx, "browser login: cannot record the session of a code", "error", err)
			}
		}
	}
	return api.WritePair(c, pair)
}

// revokeReplayed revokes the session a replayed code opened (RFC 6749
// 4.1.2: a code used twice may have been stolen).
func (f *Flow) revokeReplayed(ctx context.Context, code Code, now time.Time) {
	f.logger.WarnContext(ctx, "browser login: replayed code", "idp", code.IDP, "user", pasee.UserName(code.IDP, code.Identity.Subject))
	if code.SessionID == "" {
		return
	}
	err := f.svc.Store().RevokeSession(ctx, "pasee (replayed login code)", code.SessionID, now)
	if err != nil && !errors.Is(err, pasee.ErrNotFound) {
		f.logger.ErrorContext(ctx, "browser login: cannot revoke the session of a replayed code", "error", err)
	}
}
