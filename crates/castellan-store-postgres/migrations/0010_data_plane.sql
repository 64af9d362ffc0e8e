-- The data plane (PostgreSQL): objects inside projects, their event logs, blobs.

-- Transaction ids of data writes. Starts at 0x0DE1 << 48 so every id has 19 digits
-- (and so the SDK's 16-hex "pretty" versions map back onto them). Data writes lock
-- this row (and only this one) until they commit, so ids are assigned in commit order.
CREATE TABLE xact_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO xact_counter (id, value) VALUES (1, 1000080592252960768);

-- Experiments, datasets, prompts, functions and playgrounds. Kind-specific fields
-- are in `data` (a JSON object).
CREATE TABLE project_objects (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    project_id UUID NOT NULL REFERENCES projects (id),
    org_id UUID NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    slug TEXT,
    description TEXT,
    user_id UUID,
    xact_id BIGINT,
    data JSONB NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX project_objects_live_name ON project_objects (project_id, kind, name)
    WHERE deleted_at IS NULL AND kind IN ('experiment', 'dataset', 'prompt_session');
CREATE UNIQUE INDEX project_objects_live_slug ON project_objects (project_id, slug)
    WHERE deleted_at IS NULL AND slug IS NOT NULL;
CREATE INDEX project_objects_created ON project_objects (created DESC, id DESC);
CREATE INDEX project_objects_project ON project_objects (project_id, kind, created);

-- Every version of a prompt or function, as the full record.
CREATE TABLE object_versions (
    object_id UUID NOT NULL,
    xact_id BIGINT NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (object_id, xact_id)
);

-- The event logs, append-only: one row per version of an event row. `data` is JSON,
-- not JSONB: rows are written far more often than searched, JSON keeps them exactly
-- as sent (as the SQLite backend does), and it is markedly cheaper to insert.
CREATE TABLE events (
    object_kind TEXT NOT NULL,
    object_id UUID NOT NULL,
    row_id TEXT COLLATE "C" NOT NULL,
    xact_id BIGINT NOT NULL,
    project_id UUID NOT NULL,
    root_span_id TEXT,
    is_root BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    is_comment BOOLEAN NOT NULL,
    data JSON NOT NULL,
    PRIMARY KEY (object_kind, object_id, row_id, xact_id)
);
CREATE INDEX events_by_xact ON events (object_kind, object_id, xact_id, row_id);

-- Attachments and oversized /logs3 payloads, stored in the database so every
-- replica can serve them.
CREATE TABLE blobs (
    key TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    org_id UUID NOT NULL REFERENCES orgs (id),
    user_id UUID NOT NULL REFERENCES users (id),
    filename TEXT,
    content_type TEXT,
    status JSONB NOT NULL,
    size_bytes BIGINT,
    data BYTEA,
    created BIGINT NOT NULL
);

-- Which logs reference which attachment (reading an attachment needs read on one).
CREATE TABLE attachment_refs (
    key TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id UUID NOT NULL,
    PRIMARY KEY (key, object_kind, object_id)
);

-- Secrets the server generates for itself (the URL-signing key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
