-- Every security event: who, what, when, from where. Never a secret.
CREATE TABLE audit_log (
    id          UUID PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    action      TEXT NOT NULL,
    -- The user who acted (an admin, or the user themself), if any.
    actor_id    UUID,
    -- The user the event is about, if any.
    user_id     UUID,
    client_id   TEXT,
    session_id  UUID,
    ip          TEXT,
    user_agent  TEXT,
    details     JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);
