-- Castellan foundation schema (PostgreSQL). Times are unix epoch microseconds.

CREATE TABLE castellan_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO castellan_revision (id, value) VALUES (1, 0);

-- One row per committed write transaction; replicas follow it to keep their
-- in-memory authorization index current.
CREATE TABLE change_log (
    revision BIGINT PRIMARY KEY,
    created BIGINT NOT NULL,
    payload JSONB NOT NULL
);

CREATE TABLE orgs (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    api_url TEXT,
    is_universal_api BOOLEAN,
    is_dataplane_private BOOLEAN,
    proxy_url TEXT,
    realtime_url TEXT,
    image_rendering_mode TEXT,
    settings JSONB NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX orgs_live_name ON orgs (name_key) WHERE deleted_at IS NULL;
CREATE INDEX orgs_created ON orgs (created DESC, id DESC);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    email TEXT,
    given_name TEXT,
    family_name TEXT,
    avatar_url TEXT,
    created BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX users_live_email ON users (email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX users_created ON users (created DESC, id DESC);

CREATE TABLE org_members (
    org_id UUID NOT NULL REFERENCES orgs (id),
    user_id UUID NOT NULL REFERENCES users (id),
    created BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE projects (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    description TEXT,
    user_id UUID,
    settings JSONB,
    created BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX projects_live_name ON projects (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX projects_created ON projects (created DESC, id DESC);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    preview_name TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id),
    org_id UUID REFERENCES orgs (id),
    created BIGINT NOT NULL,
    last_used BIGINT,
    expires_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX api_keys_created ON api_keys (created DESC, id DESC);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- The audit log, hash-chained per org. before/after/details are the exact JSON text
-- that was hashed (TEXT, not JSONB, so nothing normalizes it).
CREATE TABLE audit_log (
    org_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    id UUID NOT NULL UNIQUE,
    revision BIGINT NOT NULL,
    created BIGINT NOT NULL,
    actor_id UUID,
    impersonator_id UUID,
    event_type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id UUID,
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
    org_id UUID PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
