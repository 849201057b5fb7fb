DROP INDEX revocations_generation_idx;
ALTER TABLE revocations DROP COLUMN generation;
DROP TABLE denylist_generation;
