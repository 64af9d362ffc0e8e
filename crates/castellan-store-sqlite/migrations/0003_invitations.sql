-- Pending invitations of people (by email) to join an organization (SQLite).
CREATE TABLE invitations (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES orgs (id),
    email TEXT NOT NULL,
    group_ids TEXT NOT NULL DEFAULT '[]',
    invited_by BLOB,
    token_hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX invitations_org ON invitations (org_id, created);
CREATE INDEX audit_log_event ON audit_log (org_id, event_type);
