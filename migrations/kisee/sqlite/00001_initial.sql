-- Kisee's initial schema (SQLite). Times are Unix seconds.

-- +goose Up
CREATE TABLE kisee_users (
    username      TEXT PRIMARY KEY,
    email         TEXT,
    password_hash TEXT NOT NULL,
    is_superuser  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- One account per name and per email whatever their case: "Root" cannot
-- register next to "root".
CREATE UNIQUE INDEX kisee_users_username_ci ON kisee_users (lower(username));
CREATE UNIQUE INDEX kisee_users_email_ci ON kisee_users (lower(email)) WHERE email IS NOT NULL AND email <> '';

-- Every identity token issued, so its owner can look it up and revoke it.
CREATE TABLE kisee_tokens (
    jti        TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX kisee_tokens_subject ON kisee_tokens (subject);
CREATE INDEX kisee_tokens_expires ON kisee_tokens (expires_at);

-- Password-reset tokens already used: each works once.
CREATE TABLE kisee_spent_reset_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Failure counters of the brute-force protection when [rate_limit] store = "sql"
-- (internal/ratelimit). Unlike the other tables, expires_at is in Unix milliseconds.
-- Pasee's migrations create the same table: whichever runs first creates it.
CREATE TABLE IF NOT EXISTS rate_limit_counters (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
-- rate_limit_counters is shared with Pasee when both use one database: it stays.
DROP TABLE kisee_spent_reset_tokens;
DROP TABLE kisee_tokens;
DROP TABLE kisee_users;
