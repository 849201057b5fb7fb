-- Tessera's grouped rotation (src/store/rotation.rs `BATCH_SQL`, verbatim but for
-- the arrays) for pgbench -M prepared: 8 rotations in one statement and one commit, as
-- Tessera sends the refreshes that arrive while its previous statement runs. The
-- ceiling of the refresh once commits are shared: bench/src/pgbench.rs reports
-- rotations per second (8 per transaction). Keep this file in step with `BATCH_SQL`.
--
-- Parameters as in pgbench_refresh.sql, one array element per rotation, the session
-- ids in ascending order (Tessera sorts a group by session id; here the ORDER BY sorts
-- them). Each transaction spends 8 sessions no earlier transaction touched:
-- base + ((k - 1) * clients + client_id) * 8 + j, j < 8.
\set k :k + 1
\set first :base + ((:k - 1) * :clients + :client_id) * 8
\set idle_seconds 1209600.0
WITH b AS MATERIALIZED (
    SELECT *
      FROM unnest(array_fill(:idle_seconds::float8, ARRAY[8]),
                  array_fill(:ip::text, ARRAY[8]),
                  array_fill(:user_agent::text, ARRAY[8]),
                  ARRAY(SELECT x FROM unnest(ARRAY[
       md5('pgbench-session-' || (:first + 0))::uuid,
       md5('pgbench-session-' || (:first + 1))::uuid,
       md5('pgbench-session-' || (:first + 2))::uuid,
       md5('pgbench-session-' || (:first + 3))::uuid,
       md5('pgbench-session-' || (:first + 4))::uuid,
       md5('pgbench-session-' || (:first + 5))::uuid,
       md5('pgbench-session-' || (:first + 6))::uuid,
       md5('pgbench-session-' || (:first + 7))::uuid]) AS x ORDER BY x),
                  array_fill(0::int8, ARRAY[8]),
                  array_fill(:oauth_client::text, ARRAY[8]))
           WITH ORDINALITY AS b(idle_seconds, ip, user_agent, id, generation, client_id, n)
)
UPDATE sessions AS s
    SET generation = s.generation + 1,
        rotated_at = now(),
        last_used_at = now(),
        refresh_expires_at = LEAST(now() + make_interval(secs => b.idle_seconds), s.expires_at),
        ip = COALESCE(b.ip, s.ip),
        user_agent = COALESCE(b.user_agent, s.user_agent)
   FROM b
  WHERE s.id = b.id
    AND s.id = ANY (ARRAY(SELECT id FROM sessions WHERE id IN (SELECT id FROM b)
                           ORDER BY id FOR UPDATE))
    AND s.generation = b.generation
    AND s.client_id = b.client_id
    AND s.revoked_at IS NULL
    AND s.expires_at > now()
    AND s.refresh_expires_at > now()
RETURNING b.n, s.user_id, s.scope, s.username, s.roles, s.generation,
          floor(extract(epoch FROM clock_timestamp()))::bigint;
