-- Nothing reads sessions by expiry, and every refresh-token rotation
-- changes expires_at: the index only cost each rotation an index update.

-- +goose Up
DROP INDEX IF EXISTS pasee_sessions_expires;

-- +goose Down
CREATE INDEX IF NOT EXISTS pasee_sessions_expires ON pasee_sessions (expires_at);
