CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    confidential   BOOLEAN NOT NULL,
    -- SHA-256 of the server-generated secret; NULL for public clients.
    secret_hash    BYTEA,
    grant_types    TEXT[] NOT NULL,
    scopes         TEXT[] NOT NULL DEFAULT '{}',
    audiences      TEXT[] NOT NULL DEFAULT '{}',
    access_token_ttl_seconds INTEGER CHECK (access_token_ttl_seconds > 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (confidential = (secret_hash IS NOT NULL))
);

-- The built-in public client used when a token request names no client_id.
INSERT INTO clients (client_id, name, confidential, grant_types, scopes)
VALUES ('tessera', 'Built-in public client', FALSE, '{password,refresh_token}', '{profile}');
