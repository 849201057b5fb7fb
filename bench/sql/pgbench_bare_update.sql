-- The smallest durable refresh imaginable, for pgbench -M prepared: one HOT update of
-- one session row (generation is not indexed and the table's fillfactor leaves room
-- in every page), committed, with one value returned. The floor under
-- pgbench_refresh.sql: what is left is the rotation's conditions and its other
-- columns.
--
-- The same sessions, numbered as in pgbench_refresh.sql: each transaction updates a
-- row no earlier transaction of this run touched.
\set k :k + 1
\set idx :base + (:k - 1) * :clients + :client_id
UPDATE sessions SET generation = generation + 1
 WHERE id = md5('pgbench-session-' || :idx)::uuid
RETURNING generation;
