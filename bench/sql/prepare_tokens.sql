-- Live sessions number first..last of a token set (one session per refresh token:
-- concurrent refreshes never queue on one session row), for the built-in public client
-- `tessera`, owned round-robin by the users of user_set, each at generation 0: the
-- state a password login leaves (src/auth/grants/password.rs), with username and roles
-- copied from the owner's users row as the login does.
--
-- A refresh token names its session and generation and carries an HMAC under a key
-- derived from the master key, so nothing about it is stored: the driver computes
-- token i of set P itself (bench/src/fixtures.rs `refresh_token`) for the session
-- md5('P-session-i')::uuid at generation 0, and pgbench names the same session id.
--
-- psql variables: prefix, first, last, user_set, users.
INSERT INTO sessions (id, user_id, client_id, scope, expires_at, generation,
                      refresh_expires_at, username, roles)
SELECT md5(:'prefix' || '-session-' || i)::uuid,
       u.id,
       'tessera', 'profile', now() + interval '30 days', 0,
       -- The idle lifetime of a fresh token (TESSERA_REFRESH_IDLE_TTL, 14 days by
       -- default), capped by the session's absolute lifetime.
       now() + interval '14 days',
       u.username, u.roles
  FROM generate_series(:first, :last) AS i
  JOIN users AS u ON u.id = md5(:'user_set' || '-' || (i % :users))::uuid;
