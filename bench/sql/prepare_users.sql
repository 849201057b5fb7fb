-- Users for the password-login scenarios, and the owners of the prepared sessions.
-- All users of one set share one bcrypt hash, computed once by the driver with the
-- cost the server runs at, so a login never triggers the server's re-hash upgrade.
--
-- psql variables: set (e.g. bench12), count, password_hash.
-- User ids are md5(username) as a UUID, so other statements can compute them.
INSERT INTO users (id, username, password_hash)
SELECT md5(:'set' || '-' || n)::uuid, :'set' || '-' || n, :'password_hash'
  FROM generate_series(0, :count - 1) AS n;
