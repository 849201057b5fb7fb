DROP TABLE consents;
DROP TABLE authorization_codes;
ALTER TABLE sessions DROP COLUMN browser_session_id;
DROP TABLE browser_sessions;
ALTER TABLE clients
    DROP COLUMN first_party,
    DROP COLUMN redirects;
