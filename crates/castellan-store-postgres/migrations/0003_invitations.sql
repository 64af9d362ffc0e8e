-- Pending invitations of people (by email) to join an organization (PostgreSQL).
CREATE TABLE invitations (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES orgs (id),
    email TEXT NOT NULL,
    group_ids JSONB NOT NULL DEFAULT '[]',
    invited_by UUID,
    token_hash TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id, created);
CREATE INDEX audit_log_event ON audit_log (org_id, event_type);
