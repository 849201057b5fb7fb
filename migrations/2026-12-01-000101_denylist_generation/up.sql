-- The denylist's generation: every accepted revocation moves it forward, in the same
-- transaction that records it (the row lock orders revocations, so every revocation of
-- generation <= g has committed once g is visible). Redis's `ready` marker holds the
-- generation it is complete up to: a marker behind this (Redis came back from an old
-- snapshot, a replica missed writes) makes the next pass write what it lacks.
CREATE TABLE denylist_generation (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    generation  BIGINT NOT NULL
);
INSERT INTO denylist_generation (singleton, generation) VALUES (TRUE, 0);

ALTER TABLE revocations ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX revocations_generation_idx ON revocations (generation);
