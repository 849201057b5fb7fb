-- Browser login (OpenID Connect authorization-code flow): what a client registers for it,
-- Tessera's own browser sessions, authorization codes and remembered consents.

-- redirects    {"redirect_uris": [...], "post_logout_redirect_uris": [...]}: where
--              /oauth/authorize may send the browser back (matched exactly; RFC 8252
--              §7.3: any port for loopback IP literals), and where /oauth/logout may send
--              it after signing out. One column for both lists keeps the table within
--              diesel's default of 16 columns per table (its 32-column support costs
--              every build minutes; src/store/clients.rs `Redirects`).
-- first_party  the operator's own app: its users see no consent page. Clients that
--              already have the password grant are trusted with passwords, so they
--              are first-party.
ALTER TABLE clients
    ADD COLUMN redirects   JSONB NOT NULL
        DEFAULT '{"redirect_uris": [], "post_logout_redirect_uris": []}',
    ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE clients SET first_party = TRUE WHERE 'password' = ANY (grant_types);

-- A person signed in on Tessera's login page, in one browser: single sign-on across
-- apps. The cookie holds a random secret; only its SHA-256 is kept. A session is over
-- when it expires, is ended (logout), or its user is disabled or changes password after
-- `auth_time` (checked on every use, so no other change has to find these rows).
CREATE TABLE browser_sessions (
    id           UUID PRIMARY KEY,
    secret_hash  BYTEA NOT NULL UNIQUE,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- The token sessions a browser session started, so signing out ends them too. (Not in
-- src/store/schema.rs, which keeps `sessions` within diesel's 16 columns: the few
-- statements that read or write it are SQL of their own, in src/store/sessions.rs.)
ALTER TABLE sessions
    ADD COLUMN browser_session_id UUID REFERENCES browser_sessions (id) ON DELETE SET NULL;
CREATE INDEX sessions_browser_session ON sessions (browser_session_id)
    WHERE browser_session_id IS NOT NULL;

-- RFC 6749 §4.1.2: single-use, short-lived, bound to its client, redirect URI and PKCE
-- challenge. Only the SHA-256 of the code is kept. `used_at` and `session_id` stay after
-- the exchange so that a second use finds, and revokes, what the first one issued.
CREATE TABLE authorization_codes (
    code_hash          BYTEA PRIMARY KEY,
    client_id          TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id            UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_session_id UUID NOT NULL REFERENCES browser_sessions (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    scope              TEXT NOT NULL,
    code_challenge     TEXT,
    nonce              TEXT,
    auth_time          TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at         TIMESTAMPTZ NOT NULL,
    used_at            TIMESTAMPTZ,
    session_id         UUID REFERENCES sessions (id) ON DELETE SET NULL
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- What a user allowed a third-party client to have, so it is asked once.
CREATE TABLE consents (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scopes     TEXT[] NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id)
);
