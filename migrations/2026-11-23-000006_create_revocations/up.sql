-- The durable record of every revocation. Redis holds the fast denylist built from
-- these rows; if Redis loses its data, it is rebuilt from here.
CREATE TABLE revocations (
    id          UUID PRIMARY KEY,
    -- jti: one access token; sid: a session; user / client: every token of that
    -- subject issued before not_before.
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid', 'user', 'client')),
    value       TEXT NOT NULL,
    not_before  TIMESTAMPTZ,
    reason      TEXT NOT NULL,
    -- Who asked: a user id, a client id, or 'system'.
    revoked_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When nothing it denies can still be alive; the Redis entry expires then too.
    expires_at  TIMESTAMPTZ NOT NULL,
    -- When the entry reached Redis; NULL while it still has to be pushed there.
    synced_at   TIMESTAMPTZ,
    CHECK ((kind IN ('user', 'client')) = (not_before IS NOT NULL))
);
CREATE INDEX revocations_expires_at_idx ON revocations (expires_at);
CREATE INDEX revocations_unsynced_idx ON revocations (created_at) WHERE synced_at IS NULL;
CREATE INDEX revocations_value_idx ON revocations (kind, value);
