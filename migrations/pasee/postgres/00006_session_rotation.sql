-- Refresh-token rotation is Pasee's most frequent write: one UPDATE of a
-- session row per refresh. Nothing reads sessions by expiry, but the index
-- on expires_at (a column every rotation changes) made each rotation write
-- a new entry in all three indexes and ruled out heap-only updates. Without
-- it, and with room left in each page for the next version of its rows, a
-- rotation stays on its page and touches no index.

-- +goose Up
DROP INDEX IF EXISTS pasee_sessions_expires;
ALTER TABLE pasee_sessions SET (fillfactor = 70);

-- +goose Down
ALTER TABLE pasee_sessions RESET (fillfactor);
CREATE INDEX IF NOT EXISTS pasee_sessions_expires ON pasee_sessions (expires_at);
