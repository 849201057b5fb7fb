DROP TRIGGER sessions_follow_user_roles ON users;
DROP FUNCTION sessions_follow_user_roles();
ALTER TABLE sessions RESET (fillfactor);

CREATE TABLE refresh_tokens (
    token_hash     BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id     UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    successor_hash BYTEA,
    retry_sealed   BYTEA
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_retry_idx ON refresh_tokens (created_at) WHERE retry_sealed IS NOT NULL;
ALTER TABLE refresh_tokens SET (fillfactor = 80);

-- Tokens of the generation format cannot be turned back into stored hashes.
UPDATE sessions
   SET revoked_at = now(), revoked_reason = 'refresh_token_format_downgrade'
 WHERE revoked_at IS NULL;

ALTER TABLE sessions
    DROP COLUMN generation,
    DROP COLUMN rotated_at,
    DROP COLUMN refresh_expires_at,
    DROP COLUMN username,
    DROP COLUMN roles;
