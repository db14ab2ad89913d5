-- Pasee as an OpenID Provider (sqlite): authorization requests waiting for a
-- login, single sign-on sessions, the sessions each opened, and the
-- authorization codes handed to clients. Read and written by
-- internal/pasee/openid only.
--
-- Times are Unix milliseconds, as in 00001. Secrets that travel (codes,
-- the single sign-on cookie) are kept as their SHA-256 only. Spent and
-- expired rows are purged an hour after expiry, so that a replayed code is
-- recognised (and revokes what it gave).
--
-- Dialect differences with the other file: WITHOUT ROWID.

-- +goose Up
-- An authorization request shown the login page. csrf is the value of the
-- browser's login cookie, which the login form must repeat; flow_verifier
-- binds the return from a redirect provider to this request (PKCE).
CREATE TABLE pasee_oidc_requests (
    id             TEXT PRIMARY KEY,
    csrf           TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT '',
    nonce          TEXT NOT NULL DEFAULT '',
    code_challenge TEXT NOT NULL DEFAULT '',
    max_age        BIGINT NOT NULL DEFAULT -1,
    login_hint     TEXT NOT NULL DEFAULT '',
    prompt         TEXT NOT NULL DEFAULT '',
    flow_verifier  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
) WITHOUT ROWID;
CREATE INDEX pasee_oidc_requests_expires ON pasee_oidc_requests (expires_at);

-- A single sign-on session: the browser's cookie (hash), who logged in and
-- when (auth_time), and the Pasee session the login opened, whose
-- revocation (logout, ban) ends this one too.
CREATE TABLE pasee_oidc_sso (
    hash       TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    idp        TEXT NOT NULL,
    subject    TEXT NOT NULL,
    claims     TEXT NOT NULL DEFAULT '{}',
    session_id TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
) WITHOUT ROWID;
CREATE INDEX pasee_oidc_sso_expires ON pasee_oidc_sso (expires_at);

-- The client sessions a single sign-on session opened: logging out ends them.
CREATE TABLE pasee_oidc_sso_sessions (
    sso        TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (sso, session_id)
) WITHOUT ROWID;

-- Authorization codes (single use, 60 s), bound to client, redirect URI
-- and PKCE challenge. session_id is the session the code opened, so that a
-- replay revokes it.
CREATE TABLE pasee_oidc_codes (
    hash           TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL DEFAULT '',
    scope          TEXT NOT NULL,
    nonce          TEXT NOT NULL DEFAULT '',
    sso            TEXT NOT NULL,
    idp            TEXT NOT NULL,
    subject        TEXT NOT NULL,
    claims         TEXT NOT NULL DEFAULT '{}',
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    session_id     TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX pasee_oidc_codes_expires ON pasee_oidc_codes (expires_at);

-- +goose Down
DROP TABLE pasee_oidc_codes;
DROP TABLE pasee_oidc_sso_sessions;
DROP TABLE pasee_oidc_sso;
DROP TABLE pasee_oidc_requests;
