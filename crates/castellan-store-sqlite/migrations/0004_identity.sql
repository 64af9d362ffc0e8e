-- Passwords and console sessions (SQLite).
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id),
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
