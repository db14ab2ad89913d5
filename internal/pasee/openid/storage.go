package openid

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/migrations"
)

// Request is an authorization request waiting for the user to log in.
type Request struct {
	ID            string
	CSRF          string // the browser's login cookie, repeated by the form
	ClientID      string
	RedirectURI   string
	Scope         string
	State         string
	Nonce         string
	CodeChallenge string
	MaxAge        int64 // seconds; -1: none asked
	LoginHint     string
	Prompt        string
	FlowVerifier  string // PKCE verifier of the redirect-provider detour
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// SSO is a single sign-on session, found by the SHA-256 of its cookie.
type SSO struct {
	Hash      string
	User      string
	IDP       string
	Subject   string
	Claims    map[string]any
	SessionID string // the Pasee session the login opened
	AuthTime  time.Time
	ExpiresAt time.Time
}

// Code is an authorization code, by the SHA-256 of its value.
type Code struct {
	Hash          string
	ClientID      string
	RedirectURI   string
	CodeChallenge string
	Scope         string
	Nonce         string
	SSO           string
	IDP           string
	Subject       string
	Claims        map[string]any
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	SessionID     string // the session the code opened, once redeemed
}

// Why a request or code cannot be used.
var (
	ErrNotFound = errors.New("unknown")
	ErrUsed     = errors.New("already used")
	ErrExpired  = errors.New("expired")
)

const purgeAfter = time.Hour

// Storage keeps the provider's state in Pasee's database (tables of
// migrations/pasee/*/00005_openid.sql), SQLite or PostgreSQL alike, so
// that every instance sharing the database completes what another began.
type Storage struct {
	db     *sql.DB
	purges sqldb.Throttle
}

// OpenStorage opens the database at Pasee's storage URL. Pasee's
// migrations must have run (the app applies them at start, or watches the
// schema and keeps /health red until `pasee migrate` has run), except for
// a private in-memory SQLite database, migrated here.
func OpenStorage(ctx context.Context, url string) (*Storage, error) {
	db, err := sqldb.OpenURL(ctx, url, migrations.Pasee, migrations.PaseeTable)
	if err != nil {
		return nil, fmt.Errorf("openid storage: %w", err)
	}
	return &Storage{db: db}, nil
}

// Close closes the database.
func (s *Storage) Close() error { return s.db.Close() }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fail(what string, err error) error {
	return sqldb.Wrap("openid storage: "+what, err, pasee.ErrUnavailable)
}

// purge deletes rows long expired, at most once a minute per instance.
func (s *Storage) purge(ctx context.Context, now time.Time) {
	if !s.purges.Due(now, time.Minute) {
		return
	}
	cutoff := ms(now.Add(-purgeAfter))
	for _, table := range []string{"pasee_oidc_requests", "pasee_oidc_codes"} {
		_, _ = s.db.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at < $1`, cutoff)
	}
	_, _ = s.db.ExecContext(ctx, `DELETE FROM pasee_oidc_sso_sessions WHERE sso IN (SELECT hash FROM pasee_oidc_sso WHERE expires_at < $1)`, cutoff)
	_, _ = s.db.ExecContext(ctx, `DELETE FROM pasee_oidc_sso WHERE expires_at < $1`, cutoff)
}

// SaveRequest records a request shown the login page.
func (s *Storage) SaveRequest(ctx context.Context, r Request) error {
	s.purge(ctx, r.CreatedAt)
	_, err := s.db.ExecContext(ctx, `INSERT INTO pasee_oidc_requests
		(id, csrf, client_id, redirect_uri, scope, state, nonce, code_challenge, max_age, login_hint, prompt, flow_verifier, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.CSRF, r.ClientID, r.RedirectURI, r.Scope, r.State, r.Nonce, r.CodeChallenge, r.MaxAge, r.LoginHint, r.Prompt, r.FlowVerifier,
		ms(r.CreatedAt), ms(r.ExpiresAt))
	if err != nil {
		return fail("save request", err)
	}
	return nil
}

const requestColumns = `csrf, client_id, redirect_uri, scope, state, nonce, code_challenge, max_age, login_hint, prompt, flow_verifier, created_at, expires_at`

func scanRequest(row *sql.Row, r *Request) error {
	var created, expires int64
	err := row.Scan(&r.CSRF, &r.ClientID, &r.RedirectURI, &r.Scope, &r.State, &r.Nonce, &r.CodeChallenge, &r.MaxAge, &r.LoginHint, &r.Prompt, &r.FlowVerifier, &created, &expires)
	r.CreatedAt, r.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
	return err
}

// GetRequest returns a live request (not used, not expired).
func (s *Storage) GetRequest(ctx context.Context, id string, now time.Time) (Request, error) {
	r := Request{ID: id}
	err := scanRequest(s.db.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM pasee_oidc_requests
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2`, id, ms(now)), &r)
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, s.why(ctx, `SELECT used_at, expires_at FROM pasee_oidc_requests WHERE id = $1`, id, now)
	}
	if err != nil {
		return Request{}, fail("read request", err)
	}
	return r, nil
}

// TakeRequest marks a live request used and returns it, once.
func (s *Storage) TakeRequest(ctx context.Context, id string, now time.Time) (Request, error) {
	r := Request{ID: id}
	err := scanRequest(s.db.QueryRowContext(ctx, `UPDATE pasee_oidc_requests SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING `+requestColumns, id, ms(now)), &r)
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, s.why(ctx, `SELECT used_at, expires_at FROM pasee_oidc_requests WHERE id = $1`, id, now)
	}
	if err != nil {
		return Request{}, fail("take request", err)
	}
	return r, nil
}

// why tells why a row could not be used.
func (s *Storage) why(ctx context.Context, query, key string, now time.Time) error {
	var used sql.NullInt64
	var expires int64
	err := s.db.QueryRowContext(ctx, query, key).Scan(&used, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return fail("read", err)
	case used.Valid:
		return ErrUsed
	case expires <= ms(now):
		return ErrExpired
	}
	return ErrNotFound
}

func encodeClaims(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func decodeClaims(raw string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// SaveSSO records a single sign-on session.
func (s *Storage) SaveSSO(ctx context.Context, o SSO) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO pasee_oidc_sso
		(hash, username, idp, subject, claims, session_id, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		o.Hash, o.User, o.IDP, o.Subject, encodeClaims(o.Claims), o.SessionID, ms(o.AuthTime), ms(o.ExpiresAt))
	if err != nil {
		return fail("save sso session", err)
	}
	return nil
}

// GetSSO returns the live single sign-on session of a cookie hash.
func (s *Storage) GetSSO(ctx context.Context, hash string, now time.Time) (SSO, error) {
	o := SSO{Hash: hash}
	var claims string
	var auth, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT username, idp, subject, claims, session_id, auth_time, expires_at
		FROM pasee_oidc_sso WHERE hash = $1 AND ended_at IS NULL AND expires_at > $2`, hash, ms(now)).
		Scan(&o.User, &o.IDP, &o.Subject, &claims, &o.SessionID, &auth, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return SSO{}, ErrNotFound
	}
	if err != nil {
		return SSO{}, fail("read sso session", err)
	}
	o.AuthTime, o.ExpiresAt = time.UnixMilli(auth), time.UnixMilli(expires)
	if o.Claims, err = decodeClaims(claims); err != nil {
		return SSO{}, fmt.Errorf("openid storage: sso claims: %w", err)
	}
	return o, nil
}

// EndSSO ends a single sign-on session and returns the Pasee sessions it
// opened (its own first), to be revoked.
func (s *Storage) EndSSO(ctx context.Context, hash string, now time.Time) ([]string, error) {
	var own string
	err := s.db.QueryRowContext(ctx, `UPDATE pasee_oidc_sso SET ended_at = $2 WHERE hash = $1 AND ended_at IS NULL RETURNING session_id`,
		hash, ms(now)).Scan(&own)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fail("end sso session", err)
	}
	out := []string{own}
	rows, err := s.db.QueryContext(ctx, `SELECT session_id FROM pasee_oidc_sso_sessions WHERE sso = $1`, hash)
	if err != nil {
		return out, fail("read sso sessions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return out, fail("read sso sessions", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SaveCode records an authorization code.
func (s *Storage) SaveCode(ctx context.Context, c Code) error {
	s.purge(ctx, c.CreatedAt)
	_, err := s.db.ExecContext(ctx, `INSERT INTO pasee_oidc_codes
		(hash, client_id, redirect_uri, code_challenge, scope, nonce, sso, idp, subject, claims, auth_time, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Scope, c.Nonce, c.SSO, c.IDP, c.Subject, encodeClaims(c.Claims),
		ms(c.AuthTime), ms(c.CreatedAt), ms(c.ExpiresAt))
	if err != nil {
		return fail("save code", err)
	}
	return nil
}

// SpendCode marks a code used and returns it. A code already used comes
// back with ErrUsed and the session it opened.
func (s *Storage) SpendCode(ctx context.Context, hash string, now time.Time) (Code, error) {
	c := Code{Hash: hash}
	var claims string
	var auth, created, expires int64
	err := s.db.QueryRowContext(ctx, `UPDATE pasee_oidc_codes SET used_at = $2
		WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING client_id, redirect_uri, code_challenge, scope, nonce, sso, idp, subject, claims, auth_time, created_at, expires_at`,
		hash, ms(now)).
		Scan(&c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Scope, &c.Nonce, &c.SSO, &c.IDP, &c.Subject, &claims, &auth, &created, &expires)
	if err == nil {
		c.AuthTime, c.CreatedAt, c.ExpiresAt = time.UnixMilli(auth), time.UnixMilli(created), time.UnixMilli(expires)
		if c.Claims, err = decodeClaims(claims); err != nil {
			return Code{}, fmt.Errorf("openid storage: code claims: %w", err)
		}
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Code{}, fail("spend code", err)
	}
	why := s.why(ctx, `SELECT used_at, expires_at FROM pasee_oidc_codes WHERE hash = $1`, hash, now)
	if errors.Is(why, ErrUsed) {
		err := s.db.QueryRowContext(ctx, `SELECT client_id, idp, subject, session_id FROM pasee_oidc_codes WHERE hash = $1`, hash).
			Scan(&c.ClientID, &c.IDP, &c.Subject, &c.SessionID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Code{}, fail("read code", err)
		}
		if c.SessionID == replayedMark {
			c.SessionID = ""
		}
		return c, ErrUsed
	}
	return Code{}, why
}

// replayedMark is the session_id of a code replayed before the session
// its first redemption opened was recorded.
const replayedMark = "-replayed-"

// CodeOpened records the session a spent code opened, and ties it to the
// single sign-on session that issued the code. ErrUsed: the code was
// replayed meanwhile (MarkReplayed), and the session must be revoked.
func (s *Storage) CodeOpened(ctx context.Context, c Code, sessionID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE pasee_oidc_codes SET session_id = $2 WHERE hash = $1 AND session_id = ''`, c.Hash, sessionID)
	if err != nil {
		return fail("record code session", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		var current string
		err := s.db.QueryRowContext(ctx, `SELECT session_id FROM pasee_oidc_codes WHERE hash = $1`, c.Hash).Scan(&current)
		if err == nil && current == replayedMark {
			return ErrUsed
		}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pasee_oidc_sso_sessions (sso, session_id) VALUES ($1, $2)`, c.SSO, sessionID); err != nil {
		return fail("record sso session", err)
	}
	return nil
}

// MarkReplayed records that a spent code was presented again before the
// session of its first redemption was recorded, so that CodeOpened
// refuses it. It reports whether it marked the code (false: the session
// is already recorded, and SpendCode returned it).
func (s *Storage) MarkReplayed(ctx context.Context, hash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE pasee_oidc_codes SET session_id = $2 WHERE hash = $1 AND session_id = ''`, hash, replayedMark)
	if err != nil {
		return false, fail("mark replayed code", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Audit writes an entry of Pasee's audit log (GET /audit/).
func (s *Storage) Audit(ctx context.Context, at time.Time, actor, action, target, detail string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO pasee_audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`,
		ms(at), actor, action, target, detail)
	if err != nil {
		return fail("audit", err)
	}
	return nil
}

// SetFlowVerifier records the PKCE verifier of a request's detour through
// a redirect provider.
func (s *Storage) SetFlowVerifier(ctx context.Context, id, verifier string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE pasee_oidc_requests SET flow_verifier = $2 WHERE id = $1`, id, verifier); err != nil {
		return fail("record flow verifier", err)
	}
	return nil
}

// ReplaceSSO ends the single sign-on session old and hands the sessions it
// opened (its anchor included) to next, so that logging out of next ends
// them too: a user who logs in again in the same browser (prompt=login,
// max_age) has one single sign-on session, not two.
func (s *Storage) ReplaceSSO(ctx context.Context, old, next string, now time.Time) error {
	ids, err := s.EndSSO(ctx, old, now)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO pasee_oidc_sso_sessions (sso, session_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, next, id); err != nil {
			return fail("move sso sessions", err)
		}
	}
	return nil
}
