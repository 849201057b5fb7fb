DROP TRIGGER revocations_notify ON revocations;
DROP FUNCTION tessera_revocations_notify();
CREATE INDEX revocations_generation_idx ON revocations (generation);
DROP INDEX revocations_feed_idx;
