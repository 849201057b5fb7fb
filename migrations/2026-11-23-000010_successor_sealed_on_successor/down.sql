ALTER TABLE refresh_tokens RESET (fillfactor);
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed BYTEA;
UPDATE refresh_tokens AS spent
   SET successor_sealed = succ.retry_sealed
  FROM refresh_tokens AS succ
 WHERE spent.successor_hash = succ.token_hash AND succ.retry_sealed IS NOT NULL;
DROP INDEX refresh_tokens_retry_idx;
ALTER TABLE refresh_tokens DROP COLUMN retry_sealed;
CREATE INDEX refresh_tokens_sealed_idx ON refresh_tokens (used_at) WHERE successor_sealed IS NOT NULL;
