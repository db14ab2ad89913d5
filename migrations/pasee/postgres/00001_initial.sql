-- Pasee's initial schema (PostgreSQL).
--
-- Times are Unix milliseconds in BIGINT columns (NULL where the Go value is
-- the zero time): the refresh-token reuse grace window is a few seconds, so
-- whole seconds would be too coarse. (rate_limit_counters is the exception:
-- it is shared with Kisee and keeps the rate limiter's unit, see Kisee's
-- migration.)
--
-- Group names are ASCII [a-z0-9_-.] (checked by the store). The subtree of X
-- is name = X OR (name > 'X.' AND name < 'X/'), '/' being the byte after
-- '.', so subtree queries are range scans of the primary key. Names are
-- COLLATE "C" so that comparisons and indexes are bytewise whatever the
-- database's default collation (in en_US, '.' and '-' are nearly ignored).
--
-- Dialect differences with the SQLite file: COLLATE "C", BIGSERIAL instead
-- of INTEGER PRIMARY KEY AUTOINCREMENT, no WITHOUT ROWID.

-- +goose Up
-- A user is "<provider>-<subject>", recorded at its first login or when it
-- is first named in a group.
CREATE TABLE pasee_users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    is_banned     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

-- Groups. parent_name is the name without its last segment (NULL for root
-- groups): its foreign key keeps the tree whole, a group cannot outlive its
-- parent, even when a subgroup is created while its parent is deleted.
CREATE TABLE pasee_groups (
    name        TEXT COLLATE "C" PRIMARY KEY,
    parent_name TEXT COLLATE "C" REFERENCES pasee_groups (name) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX pasee_groups_parent ON pasee_groups (parent_name);

-- The root group, whose members administer everything; it is never deleted.
INSERT INTO pasee_groups (name, parent_name, created_at)
VALUES ('staff', NULL, (extract(epoch FROM now()) * 1000)::BIGINT);

-- Members of a group by group (primary key) and groups of a user (index).
CREATE TABLE pasee_memberships (
    group_name TEXT COLLATE "C" NOT NULL,
    user_name  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, user_name),
    CONSTRAINT pasee_memberships_group_fk FOREIGN KEY (group_name) REFERENCES pasee_groups (name) ON DELETE CASCADE,
    CONSTRAINT pasee_memberships_user_fk FOREIGN KEY (user_name) REFERENCES pasee_users (name) ON DELETE CASCADE
);
CREATE INDEX pasee_memberships_user ON pasee_memberships (user_name, group_name);

-- Refresh sessions: one login and the chain of refresh tokens descended from
-- it. claims is a JSON object.
CREATE TABLE pasee_sessions (
    id            TEXT PRIMARY KEY,
    user_name     TEXT COLLATE "C" NOT NULL REFERENCES pasee_users (name) ON DELETE CASCADE,
    idp           TEXT NOT NULL,
    claims        TEXT NOT NULL DEFAULT '{}',
    refresh_jti   TEXT NOT NULL,
    access_jti    TEXT NOT NULL,
    previous_jti  TEXT NOT NULL DEFAULT '',
    issued_at     BIGINT NOT NULL,
    rotated_at    BIGINT,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX pasee_sessions_user ON pasee_sessions (user_name);
CREATE INDEX pasee_sessions_expires ON pasee_sessions (expires_at);

-- Who changed what in groups, memberships, bans and sessions; newest first
-- by id.
CREATE TABLE pasee_audit_log (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

-- Failure counters of the brute-force protection when [rate_limit] store =
-- "sql". Identical to Kisee's table and shared with it when both services
-- use one database, hence IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS rate_limit_counters (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
-- rate_limit_counters may be Kisee's too: it is left in place.
DROP TABLE pasee_audit_log;
DROP TABLE pasee_sessions;
DROP TABLE pasee_memberships;
DROP TABLE pasee_groups;
DROP TABLE pasee_users;
