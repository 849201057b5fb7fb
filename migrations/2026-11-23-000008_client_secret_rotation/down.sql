ALTER TABLE clients
    DROP COLUMN previous_secret_hash,
    DROP COLUMN previous_secret_expires_at;
