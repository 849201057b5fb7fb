-- A refresh token is now (session id, generation), authenticated with a MAC under a key
-- derived from the master key (src/auth/refresh_mac.rs): the session row is the whole
-- state of its chain. A refresh is one conditional update of that row
-- (src/store/refresh.rs `rotate`); nothing is inserted, so storage no longer grows
-- with refreshes.
--
-- generation          the generation of the one live refresh token; the token of the
--                     generation before it is accepted again within the grace window
--                     (a retry), any older one is a replay.
-- rotated_at          when the current generation was issued by a rotation (NULL: the
--                     login's token has not been rotated yet).
-- refresh_expires_at  idle expiry of the current token, capped by expires_at.
-- username, roles     what the session's access tokens carry, kept here so a refresh
--                     reads one row; a trigger keeps roles in step with users.roles
--                     inside the transaction that changes them (the order a role
--                     change and a refresh take the session row lock in is the order
--                     of their effects: see `rotate`).
ALTER TABLE sessions
    ADD COLUMN generation         BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
    ADD COLUMN rotated_at         TIMESTAMPTZ,
    ADD COLUMN refresh_expires_at TIMESTAMPTZ,
    ADD COLUMN username           TEXT,
    ADD COLUMN roles              TEXT[];

-- One-time migration, in the same pass: refresh tokens of the old format were random
-- strings of which only a hash was kept, so they cannot be carried over. Their sessions
-- end here and the tokens are refused with invalid_grant; their holders log in again
-- (README, "Upgrading"). Access tokens already issued stay valid until they expire.
UPDATE sessions AS s
   SET username = u.username,
       roles = u.roles,
       refresh_expires_at = s.expires_at,
       revoked_reason = CASE WHEN s.revoked_at IS NULL
                             THEN 'refresh_token_format_upgrade' ELSE s.revoked_reason END,
       revoked_at = COALESCE(s.revoked_at, now())
  FROM users AS u
 WHERE u.id = s.user_id;

ALTER TABLE sessions
    ALTER COLUMN refresh_expires_at SET NOT NULL,
    ALTER COLUMN username SET NOT NULL,
    ALTER COLUMN roles SET NOT NULL;

DROP TABLE refresh_tokens;

-- Room in every page for the updated version of each row, so a rotation, which changes
-- no indexed column, is a HOT update: no index is touched and pruning reclaims the old
-- version within the page, without waiting for vacuum.
ALTER TABLE sessions SET (fillfactor = 50);

-- The live sessions' rows are locked in id order, as every statement that locks several
-- of one user's sessions does (src/store/sessions.rs), so two such changes never wait
-- for each other in a cycle.
CREATE FUNCTION sessions_follow_user_roles() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET roles = NEW.roles
     WHERE id IN (SELECT id FROM sessions
                   WHERE user_id = NEW.id AND revoked_at IS NULL AND expires_at > now()
                   ORDER BY id
                     FOR UPDATE);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_follow_user_roles
    AFTER UPDATE OF roles ON users
    FOR EACH ROW
    WHEN (OLD.roles IS DISTINCT FROM NEW.roles)
    EXECUTE FUNCTION sessions_follow_user_roles();
