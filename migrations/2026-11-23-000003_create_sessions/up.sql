-- A session is the chain of refresh tokens that grows from one login; its id is the
-- `sid` claim of every access token minted in it.
CREATE TABLE sessions (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Absolute lifetime: no refresh extends a session past this.
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoked_reason TEXT,
    user_agent    TEXT,
    ip            TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
