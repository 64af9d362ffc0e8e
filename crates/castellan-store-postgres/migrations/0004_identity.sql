-- Passwords and console sessions (PostgreSQL).
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id),
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
