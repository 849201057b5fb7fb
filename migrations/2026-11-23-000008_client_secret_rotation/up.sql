-- After a secret rotation the previous secret stays valid for an overlap, so that a
-- client's instances can be redeployed with the new one without downtime.
ALTER TABLE clients
    ADD COLUMN previous_secret_hash BYTEA,
    ADD COLUMN previous_secret_expires_at TIMESTAMPTZ,
    ADD CHECK ((previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL));
