-- The browser login flow of oauth2/oidc providers (SQLite): Pasee's
-- single-use states and the one-time codes handed to apps. Kept in the
-- database so that several Pasee instances behind one hostname share them:
-- a flow started on one instance completes on another.
--
-- Times are Unix milliseconds, as in 00001. used_at is NULL until the row
-- is spent; spent rows stay until they are purged an hour after expiry, so
-- that a replay is told apart from an unknown value (and a replayed code
-- revokes the session it opened).
--
-- Dialect differences with the PostgreSQL file: WITHOUT ROWID.

-- +goose Up
-- One row per redirection to a provider. id is the jti of the signed state
-- Pasee sends to the provider; verifier is the PKCE code verifier, which
-- never leaves Pasee; app_state and redirect_uri are the app's, returned to
-- it after the callback; app_challenge is the app's own optional PKCE
-- challenge, checked when it redeems its code.
CREATE TABLE pasee_flow_states (
    id            TEXT PRIMARY KEY,
    idp           TEXT NOT NULL,
    verifier      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL DEFAULT '',
    app_state     TEXT NOT NULL DEFAULT '',
    app_challenge TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
) WITHOUT ROWID;
CREATE INDEX pasee_flow_states_expires ON pasee_flow_states (expires_at);

-- One-time codes (valid 60 s) an app redeems for a token pair with POST
-- /tokens/?grant=code. Only the SHA-256 of a code is kept. The identity
-- the provider vouched for waits here; the session is opened at
-- redemption, and its id recorded so that a replay can revoke it.
CREATE TABLE pasee_flow_codes (
    hash          TEXT PRIMARY KEY,
    idp           TEXT NOT NULL,
    subject       TEXT NOT NULL,
    claims        TEXT NOT NULL DEFAULT '{}',
    app_challenge TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    session_id    TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX pasee_flow_codes_expires ON pasee_flow_codes (expires_at);

-- +goose Down
DROP TABLE pasee_flow_codes;
DROP TABLE pasee_flow_states;
