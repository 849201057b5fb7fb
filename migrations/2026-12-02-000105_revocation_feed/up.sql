-- The revocation feed (GET /v1/revocations/stream) reads revocations in commit order:
-- by generation (which orders the transactions that record them), then by id within
-- one transaction. A cursor is such a pair.
CREATE INDEX revocations_feed_idx ON revocations (generation, id);
DROP INDEX revocations_generation_idx;

-- Every instance LISTENs on this channel and reads the new rows when it fires. The
-- notification is sent at commit, so a listener never reads ahead of what committed;
-- an instance that was not listening (reconnecting, or PostgreSQL failed over) still
-- reads everything on its next catch-up query, since the rows are the record and the
-- notification only says when to look.
CREATE FUNCTION tessera_revocations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_revocations', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER revocations_notify AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_revocations_notify();
