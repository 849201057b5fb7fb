-- Browser mode: the refresh token travels only in an HttpOnly cookie, never in a body
-- that JavaScript could read, and cookie-borne requests must pass a CSRF check.
ALTER TABLE clients ADD COLUMN browser_mode BOOLEAN NOT NULL DEFAULT FALSE;
