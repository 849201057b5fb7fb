-- Live refresh tokens number first..last of a token set, each in a session of its own
-- (one session per token: concurrent refreshes never queue on one session row), for
-- the built-in public client `tessera`, owned round-robin by the users of user_set.
--
-- Token i of set P is 'rt_' || base64url(sha256('P-i')) without padding: the shape
-- Tessera issues (rt_ + 43 characters), and computable here, by the driver and by the
-- pgbench script alike. Only sha256(token) is stored, as Tessera does.
--
-- psql variables: prefix, first, last, user_set, users.
INSERT INTO sessions (id, user_id, client_id, scope, expires_at)
SELECT md5(:'prefix' || '-session-' || i)::uuid,
       md5(:'user_set' || '-' || (i % :users))::uuid,
       'tessera', 'profile', now() + interval '30 days'
  FROM generate_series(:first, :last) AS i;

INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
SELECT sha256(convert_to('rt_' || rtrim(translate(encode(
           sha256(convert_to(:'prefix' || '-' || i, 'UTF8')), 'base64'), '+/', '-_'), '='), 'UTF8')),
       md5(:'prefix' || '-session-' || i)::uuid,
       now() + interval '14 days'
  FROM generate_series(:first, :last) AS i;
