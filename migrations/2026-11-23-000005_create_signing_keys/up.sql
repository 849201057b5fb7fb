CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('ES256', 'EdDSA', 'RS256')),
    state         TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    -- The public JWK as published in the JWKS.
    public_jwk    JSONB NOT NULL,
    -- nonce || AES-256-GCM(PKCS#8 private key) under the master key, kid as AAD.
    private_key_sealed BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- For the current and retired keys: when it started signing. For the next key:
    -- when it is due to start (at least the publish-ahead time after its creation).
    -- Current and retired keys: when it started signing. The next key: when it is
    -- due to start, at least the publish-ahead time after it was created.
    activated_at  TIMESTAMPTZ,
    retired_at    TIMESTAMPTZ,
    -- When a retired key leaves the JWKS: every token it signed has expired by then.
    publish_until TIMESTAMPTZ
);
-- At most one key signs and at most one waits to sign, whatever the number of instances.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
