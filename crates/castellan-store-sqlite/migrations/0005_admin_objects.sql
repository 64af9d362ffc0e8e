-- Administration objects: environment variables and the other named settings of an
-- organization, a project or an object (SQLite). Secret values are only ever stored
-- sealed by the server (AEAD bound to org, kind, row and name).
CREATE TABLE admin_objects (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id BLOB NOT NULL REFERENCES orgs (id),
    scope_type TEXT NOT NULL,
    scope_id BLOB NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    secret BLOB,
    secret_updated_at INTEGER,
    secret_updated_by BLOB,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    CONSTRAINT admin_objects_name UNIQUE (kind, scope_type, scope_id, name)
);
CREATE INDEX admin_objects_org ON admin_objects (org_id, kind, created);
CREATE INDEX admin_objects_scope ON admin_objects (scope_id);
