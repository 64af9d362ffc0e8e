-- Single sign-on (PostgreSQL): identities at OpenID providers, the group memberships
-- single sign-on made (so it only ever takes back its own), and how each console
-- session was started.
CREATE TABLE sso_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id),
    org_id UUID NOT NULL REFERENCES orgs (id),
    config_id UUID NOT NULL,
    email TEXT,
    created BIGINT NOT NULL,
    last_login BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id, issuer);
CREATE TABLE sso_group_members (
    group_id UUID NOT NULL,
    user_id UUID NOT NULL,
    config_id UUID NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX sso_group_members_user ON sso_group_members (user_id);
ALTER TABLE sessions ADD COLUMN via TEXT;
-- A command-line sign-in's one-time code (RFC 8252 loopback redirect): exchanged once,
-- with the verifier of its challenge, for an API key.
CREATE TABLE sso_cli_grants (
    code_hash TEXT PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id),
    org_id UUID NOT NULL REFERENCES orgs (id),
    config_id UUID NOT NULL,
    challenge TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
