-- Groups, roles and ACLs (SQLite).

CREATE TABLE groups (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    description TEXT,
    user_id BLOB,
    created INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX groups_live_name ON groups (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX groups_created ON groups (created DESC, id DESC);

CREATE TABLE group_users (
    group_id BLOB NOT NULL REFERENCES groups (id),
    user_id BLOB NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_users_user ON group_users (user_id);

CREATE TABLE group_groups (
    group_id BLOB NOT NULL REFERENCES groups (id),
    member_group_id BLOB NOT NULL REFERENCES groups (id),
    PRIMARY KEY (group_id, member_group_id)
);
CREATE INDEX group_groups_member ON group_groups (member_group_id);

CREATE TABLE roles (
    id BLOB PRIMARY KEY,
    org_id BLOB REFERENCES orgs (id),
    name TEXT NOT NULL,
    description TEXT,
    user_id BLOB,
    created INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX roles_live_name ON roles (org_id, name) WHERE deleted_at IS NULL AND org_id IS NOT NULL;
CREATE UNIQUE INDEX roles_live_system_name ON roles (name) WHERE deleted_at IS NULL AND org_id IS NULL;
CREATE INDEX roles_created ON roles (created DESC, id DESC);

-- restrict_object_type is '' for "no restriction" so it can be part of the key.
CREATE TABLE role_permissions (
    role_id BLOB NOT NULL REFERENCES roles (id),
    permission TEXT NOT NULL,
    restrict_object_type TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (role_id, permission, restrict_object_type)
);

CREATE TABLE role_roles (
    role_id BLOB NOT NULL REFERENCES roles (id),
    member_role_id BLOB NOT NULL REFERENCES roles (id),
    PRIMARY KEY (role_id, member_role_id)
);
CREATE INDEX role_roles_member ON role_roles (member_role_id);

CREATE TABLE acls (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES orgs (id),
    content_key TEXT NOT NULL UNIQUE,
    object_type TEXT NOT NULL,
    object_id BLOB NOT NULL,
    user_id BLOB,
    group_id BLOB,
    permission TEXT,
    role_id BLOB,
    restrict_object_type TEXT,
    expires_at INTEGER,
    created INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    CHECK ((permission IS NULL) <> (role_id IS NULL)),
    CHECK (role_id IS NULL OR restrict_object_type IS NULL)
);
CREATE INDEX acls_object ON acls (object_type, object_id);
CREATE INDEX acls_user ON acls (user_id);
CREATE INDEX acls_group ON acls (group_id);
CREATE INDEX acls_role ON acls (role_id);
CREATE INDEX acls_org_created ON acls (org_id, created DESC, id DESC);
