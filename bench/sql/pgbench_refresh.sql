-- What Tessera sends PostgreSQL for one refresh (grant_type=refresh_token from the
-- built-in public client), for pgbench -M prepared: the rotation of
-- src/store/refresh.rs `RotateQuery`, verbatim, one statement that each connection
-- prepares once. (The client record comes from Tessera's short-lived client cache,
-- src/auth/clients.rs `Directory`, and the token's MAC is checked without I/O, so
-- steady-state refreshes send nothing else.) Keep this file in step with it.
--
-- Its six parameters are bound as Tessera binds them, in the same order: the idle
-- lifetime in seconds (a double, TESSERA_REFRESH_IDLE_TTL's default of 14 days), the
-- request's ip and user agent (text; -D ip=... -D user_agent=..., set by
-- bench/src/pgbench.rs), the session id, the generation presented (0: every session
-- here is fresh) and the client id (-D oauth_client=tessera: pgbench has a client_id
-- of its own). The session id is the one thing computed in the statement:
-- md5('pgbench-session-' || idx)::uuid, as bench/sql/prepare_tokens.sql names the
-- prepared sessions (one md5, microseconds).
--
-- Each client spends the sessions base + k * clients + client_id, k = 0, 1, ...: every
-- transaction presents a token never presented before (pgbench keeps a client's
-- variables from one transaction to the next).
\set k :k + 1
\set idx :base + (:k - 1) * :clients + :client_id
\set idle_seconds 1209600.0
\set generation 0
UPDATE sessions
                SET generation = generation + 1,
                    rotated_at = now(),
                    last_used_at = now(),
                    refresh_expires_at = LEAST(now() + make_interval(secs => :idle_seconds), expires_at), ip = COALESCE(:ip, ip), user_agent = COALESCE(:user_agent, user_agent) WHERE id = md5('pgbench-session-' || :idx)::uuid AND generation = :generation AND client_id = :oauth_client AND revoked_at IS NULL
              AND expires_at > now()
              AND refresh_expires_at > now()
            RETURNING user_id, scope, username, roles, generation,
                      -- Evaluated for the updated row, so after its lock was taken.
                      floor(extract(epoch FROM clock_timestamp()))::bigint;
