-- Introspection (RFC 7662 §4): a client learns only about tokens issued to it or meant
-- for an audience it serves, unless an administrator lets it see every token.
ALTER TABLE clients ADD COLUMN introspect_any BOOLEAN NOT NULL DEFAULT FALSE;
