-- What Tessera sends PostgreSQL for one refresh (grant_type=refresh_token from the
-- built-in public client), for pgbench -M prepared: the rotation of
-- src/store/refresh_tokens.rs `rotate`, verbatim, one statement that each connection
-- prepares once. (The client record comes from Tessera's short-lived client cache,
-- src/auth/clients.rs `Directory`, so steady-state refreshes send nothing else.)
-- Tessera binds the token hashes, the sealed successor and the request's ip and
-- user agent as parameters; here they are computed from the token number (two
-- SHA-256 inside the statement, microseconds) or written as constants of the same
-- size. Keep this file in step with those two functions.
--
-- Each client spends the tokens base + k * clients + client_id, k = 0, 1, ...: every
-- transaction presents a token never presented before (pgbench keeps a client's
-- variables from one transaction to the next).
\set k :k + 1
\set idx :base + (:k - 1) * :clients + :client_id
WITH spent AS (
    UPDATE refresh_tokens AS rt
       SET used_at = now(),
           successor_hash = sha256(convert_to('pgbench-successor-' || :idx, 'UTF8'))
      FROM sessions AS s, users AS u
     WHERE rt.token_hash = sha256(convert_to('rt_' || rtrim(translate(encode(
               sha256(convert_to('pgbench-' || :idx, 'UTF8')), 'base64'), '+/', '-_'), '='), 'UTF8'))
       AND rt.used_at IS NULL
       AND rt.expires_at > now()
       AND s.id = rt.session_id
       AND s.revoked_at IS NULL
       AND s.expires_at > now()
       AND s.client_id = 'tessera'
       AND u.id = s.user_id
       AND NOT u.disabled
 RETURNING s.id AS session_id, s.user_id, s.scope, s.expires_at AS session_expires_at,
           u.username, u.roles
), issued AS (
    INSERT INTO refresh_tokens (token_hash, session_id, expires_at, retry_sealed)
    SELECT sha256(convert_to('pgbench-successor-' || :idx, 'UTF8')), session_id,
           LEAST(now() + make_interval(secs => 1209600), session_expires_at),
           decode(repeat('5a', 75), 'hex')
      FROM spent
 RETURNING expires_at
), touched AS (
    UPDATE sessions
       SET last_used_at = now(),
           ip = COALESCE('127.0.0.1', sessions.ip),
           user_agent = COALESCE('tessera-bench', sessions.user_agent)
      FROM spent
     WHERE sessions.id = spent.session_id
)
SELECT spent.session_id, spent.user_id, spent.scope, spent.username, spent.roles,
       issued.expires_at AS refresh_expires_at
  FROM spent, issued;
