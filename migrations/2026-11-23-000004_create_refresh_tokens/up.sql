CREATE TABLE refresh_tokens (
    -- SHA-256 of the token; the token itself is never stored.
    token_hash       BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id       UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Idle lifetime, capped by the session's absolute lifetime.
    expires_at       TIMESTAMPTZ NOT NULL,
    -- Set once, by the rotation that spends this token.
    used_at          TIMESTAMPTZ,
    successor_hash   BYTEA,
    -- The successor token sealed under a key derived from this token, so that a retry
    -- within the grace window gets the same successor. Cleared once the window closes.
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_sealed_idx ON refresh_tokens (used_at) WHERE successor_sealed IS NOT NULL;
