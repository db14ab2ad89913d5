package flow

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

// State is one redirection to a provider, waiting for its callback.
type State struct {
	ID           string // the jti of the signed state sent to the provider
	IDP          string
	Verifier     string // PKCE code verifier; never leaves Pasee
	Nonce        string
	RedirectURI  string // the app's, "" when the pair is answered as JSON
	AppState     string
	AppChallenge string // the app's own PKCE challenge (S256), optional
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// Code is a one-time code handed to an app, by the SHA-256 of its value.
type Code struct {
	Hash         string
	IDP          string
	Identity     pasee.Identity
	AppChallenge string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	// SessionID is the session the code opened, once redeemed.
	SessionID string
}

// Why a state or code cannot be spent.
var (
	ErrNotFound = errors.New("unknown")
	ErrUsed     = errors.New("already used")
	ErrExpired  = errors.New("expired")
	// ErrTooManyPending: SaveState refused a state because the cap of
	// pending states is reached.
	ErrTooManyPending = errors.New("too many logins in progress")
)

// DefaultMaxPendingStates caps the unexpired states kept (each about
// 1.3 KB, for StateTTL): anonymous clients create them, so their number
// must be bounded whatever the per-address limits.
const DefaultMaxPendingStates = 10_000

// Storage keeps states and codes where every Pasee instance sharing the
// database sees them; taking a state and spending a code are atomic, so a
// value is accepted once across all instances.
type Storage interface {
	SaveState(ctx context.Context, s State) error
	// TakeState marks the state used and returns it; ErrNotFound,
	// ErrUsed or ErrExpired otherwise.
	TakeState(ctx context.Context, id string, now time.Time) (State, error)
	SaveCode(ctx context.Context, c Code) error
	// SpendCode marks the code used and returns it. A code already used is
	// returned with ErrUsed (its SessionID tells what it opened).
	SpendCode(ctx context.Context, hash string, now time.Time) (Code, error)
	// SetCodeSession records the session a spent code opened.
	SetCodeSession(ctx context.Context, hash, sessionID string) error
}

// purgeAfter is how long spent and expired rows are kept past their
// expiry, so that replays are recognised as such.
const purgeAfter = time.Hour

// SQLStorage is Storage on Pasee's database (tables of
// migrations/pasee/*/00002_flow.sql), SQLite or PostgreSQL alike.
type SQLStorage struct {
	// MaxPending caps the unexpired states (DefaultMaxPendingStates when
	// 0): beyond, SaveState returns ErrTooManyPending.
	MaxPending int

	db     *sql.DB
	purges sqldb.Throttle
}

var _ Storage = (*SQLStorage)(nil)

// OpenStorage opens the database at the storage URL of Pasee's settings.
// Pasee's migrations must have run (the app applies them at start, or
// watches the schema and keeps /health red until `pasee migrate` has run),
// except for a private in-memory SQLite database ("sqlite::memory:", whose
// every opening is a new database), which is migrated here, silently.
func OpenStorage(ctx context.Context, url string) (*SQLStorage, error) {
	db, err := sqldb.OpenURL(ctx, url, migrations.Pasee, migrations.PaseeTable)
	if err != nil {
		return nil, fmt.Errorf("flow storage: %w", err)
	}
	return NewSQLStorage(db), nil
}

// NewSQLStorage returns storage on db, opened with sqldb.Open.
func NewSQLStorage(db *sql.DB) *SQLStorage { return &SQLStorage{db: db} }

// Close closes the database.
func (s *SQLStorage) Close() error { return s.db.Close() }

// Ping checks the database.
func (s *SQLStorage) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fail(what string, err error) error {
	return sqldb.Wrap("flow storage: "+what, err, pasee.ErrUnavailable)
}

// purge deletes rows long expired, at most once a minute per instance.
func (s *SQLStorage) purge(ctx context.Context, now time.Time) {
	if !s.purges.Due(now, time.Minute) {
		return
	}
	cutoff := ms(now.Add(-purgeAfter))
	_, _ = s.db.ExecContext(ctx, `DELETE FROM pasee_flow_states WHERE expires_at < $1`, cutoff)
	_, _ = s.db.ExecContext(ctx, `DELETE FROM pasee_flow_codes WHERE expires_at < $1`, cutoff)
}

// SaveState implements Storage. The insert and the count of pending
// states are one statement, so that the cap holds under concurrency up to
// the database's isolation (a few over it at worst).
func (s *SQLStorage) SaveState(ctx context.Context, st State) error {
	s.purge(ctx, st.CreatedAt)
	limit := s.MaxPending
	if limit <= 0 {
		limit = DefaultMaxPendingStates
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO pasee_flow_states
		(id, idp, verifier, nonce, redirect_uri, app_state, app_challenge, created_at, expires_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
		WHERE (SELECT count(*) FROM pasee_flow_states WHERE expires_at > $8) < $10`,
		st.ID, st.IDP, st.Verifier, st.Nonce, st.RedirectURI, st.AppState, st.AppChallenge, ms(st.CreatedAt), ms(st.ExpiresAt), limit)
	if err != nil {
		return fail("save state", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrTooManyPending
	}
	return nil
}

// TakeState implements Storage.
func (s *SQLStorage) TakeState(ctx context.Context, id string, now time.Time) (State, error) {
	st := State{ID: id}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `UPDATE pasee_flow_states SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING idp, verifier, nonce, redirect_uri, app_state, app_challenge, created_at, expires_at`, id, ms(now)).
		Scan(&st.IDP, &st.Verifier, &st.Nonce, &st.RedirectURI, &st.AppState, &st.AppChallenge, &created, &expires)
	if err == nil {
		st.CreatedAt, st.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
		return st, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return State{}, fail("take state", err)
	}
	return State{}, s.why(ctx, `SELECT used_at, expires_at FROM pasee_flow_states WHERE id = $1`, id, now)
}

// why tells why a row could not be spent.
func (s *SQLStorage) why(ctx context.Context, query, key string, now time.Time) error {
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
	return ErrNotFound // spent concurrently and purged: treat as unknown
}

// SaveCode implements Storage.
func (s *SQLStorage) SaveCode(ctx context.Context, c Code) error {
	claims, err := json.Marshal(c.Identity.Claims)
	if err != nil || c.Identity.Claims == nil {
		claims = []byte("{}")
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO pasee_flow_codes
		(hash, idp, subject, claims, app_challenge, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.Hash, c.IDP, c.Identity.Subject, string(claims), c.AppChallenge, ms(c.CreatedAt), ms(c.ExpiresAt))
	if err != nil {
		return fail("save code", err)
	}
	return nil
}

// SpendCode implements Storage.
func (s *SQLStorage) SpendCode(ctx context.Context, hash string, now time.Time) (Code, error) {
	c := Code{Hash: hash}
	var claims string
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `UPDATE pasee_flow_codes SET used_at = $2
		WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING idp, subject, claims, app_challenge, created_at, expires_at`, hash, ms(now)).
		Scan(&c.IDP, &c.Identity.Subject, &claims, &c.AppChallenge, &created, &expires)
	if err == nil {
		c.CreatedAt, c.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
		if c.Identity.Claims, err = decodeClaims(claims); err != nil {
			return Code{}, fmt.Errorf("flow storage: code claims: %w", err)
		}
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Code{}, fail("spend code", err)
	}
	why := s.why(ctx, `SELECT used_at, expires_at FROM pasee_flow_codes WHERE hash = $1`, hash, now)
	if errors.Is(why, ErrUsed) {
		err := s.db.QueryRowContext(ctx, `SELECT idp, subject, session_id FROM pasee_flow_codes WHERE hash = $1`, hash).
			Scan(&c.IDP, &c.Identity.Subject, &c.SessionID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Code{}, fail("read code", err)
		}
		return c, ErrUsed
	}
	return Code{}, why
}

// SetCodeSession implements Storage.
func (s *SQLStorage) SetCodeSession(ctx context.Context, hash, sessionID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE pasee_flow_codes SET session_id = $2 WHERE hash = $1`, hash, sessionID); err != nil {
		return fail("record code session", err)
	}
	return nil
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
