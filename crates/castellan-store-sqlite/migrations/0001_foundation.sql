-- Castellan foundation schema (SQLite). Times are unix epoch microseconds.

CREATE TABLE castellan_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO castellan_revision (id, value) VALUES (1, 0);

-- One row per committed write transaction; replicas follow it to keep their
-- in-memory authorization index current.
CREATE TABLE change_log (
    revision INTEGER PRIMARY KEY,
    created INTEGER NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE orgs (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    api_url TEXT,
    is_universal_api INTEGER,
    is_dataplane_private INTEGER,
    proxy_url TEXT,
    realtime_url TEXT,
    image_rendering_mode TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX orgs_live_name ON orgs (name_key) WHERE deleted_at IS NULL;
CREATE INDEX orgs_created ON orgs (created DESC, id DESC);

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    email TEXT,
    given_name TEXT,
    family_name TEXT,
    avatar_url TEXT,
    created INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX users_live_email ON users (email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX users_created ON users (created DESC, id DESC);

CREATE TABLE org_members (
    org_id BLOB NOT NULL REFERENCES orgs (id),
    user_id BLOB NOT NULL REFERENCES users (id),
    created INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE projects (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    description TEXT,
    user_id BLOB,
    settings TEXT,
    created INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX projects_live_name ON projects (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX projects_created ON projects (created DESC, id DESC);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    preview_name TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id),
    org_id BLOB REFERENCES orgs (id),
    created INTEGER NOT NULL,
    last_used INTEGER,
    expires_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX api_keys_created ON api_keys (created DESC, id DESC);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- The audit log, hash-chained per org. before/after/details are the exact JSON text
-- that was hashed.
CREATE TABLE audit_log (
    org_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL UNIQUE,
    revision INTEGER NOT NULL,
    created INTEGER NOT NULL,
    actor_id BLOB,
    impersonator_id BLOB,
    event_type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id BLOB,
    resource_name TEXT,
    before TEXT,
    after TEXT,
    details TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_log_created ON audit_log (org_id, created DESC, seq DESC);

CREATE TABLE audit_head (
    org_id BLOB PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
