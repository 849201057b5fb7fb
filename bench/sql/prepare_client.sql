-- The confidential client of the client_credentials and introspection scenarios; it may
-- introspect any token (`introspect_any`), since the introspection scenario asks about a
-- user's token minted for another client. The driver generates the secret and passes only its SHA-256 here, as Tessera stores it
-- (src/auth/clients.rs, hash_secret).
--
-- psql variables: client_id, secret_hash (hex).
INSERT INTO clients (client_id, name, confidential, secret_hash, grant_types, scopes,
                     introspect_any)
VALUES (:'client_id', 'Benchmark service', TRUE, decode(:'secret_hash', 'hex'),
        '{client_credentials}', '{bench.read}', TRUE);
