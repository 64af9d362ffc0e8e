-- Administration objects: environment variables and the other named settings of an
-- organization, a project or an object (PostgreSQL). Secret values are only ever
-- stored sealed by the server (AEAD bound to org, kind, row and name).
CREATE TABLE admin_objects (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id UUID NOT NULL REFERENCES orgs (id),
    scope_type TEXT NOT NULL,
    scope_id UUID NOT NULL,
    name TEXT NOT NULL,
    data JSONB NOT NULL DEFAULT '{}',
    secret BYTEA,
    secret_updated_at BIGINT,
    secret_updated_by UUID,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    CONSTRAINT admin_objects_name UNIQUE (kind, scope_type, scope_id, name)
);
CREATE INDEX admin_objects_org ON admin_objects (org_id, kind, created);
CREATE INDEX admin_objects_scope ON admin_objects (scope_id);
