use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::sessions;
use super::StoreError;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub expires_at: DateTime<Utc>,
    /// Idle expiry of the login's refresh token (generation 0).
    pub refresh_expires_at: DateTime<Utc>,
    pub username: &'a str,
    pub roles: &'a [String],
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Starts a session at generation 0: its first refresh token.
pub(crate) fn insert(conn: &mut PgConnection, session: &NewSession<'_>) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)?;
    Ok(())
}

/// Marks a session revoked. Returns false if it was already revoked or does not exist.
pub(crate) fn revoke(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<bool, StoreError> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(diesel::dsl::now),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub(crate) fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Drops sessions that ended (expired) more than `keep_days` ago.
pub(crate) fn delete_expired(conn: &mut PgConnection, keep_days: i32) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "DELETE FROM sessions WHERE expires_at < now() - make_interval(days => $1)",
    )
    .bind::<diesel::sql_types::Integer, _>(keep_days)
    .execute(conn)?)
}

/// The user's sessions that can still be refreshed, most recently used first.
pub(crate) fn live_for_user(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<SessionRow>, StoreError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .order(sessions::last_used_at.desc())
        .select(SessionRow::as_select())
        .load(conn)?)
}

/// Revokes every live session of a user, except `keep`; returns the ids revoked. The
/// rows are locked in id order, as every statement that locks several sessions of one
/// user does (the roles trigger of migration 000103, a logout of several), so two of
/// them never wait for each other in a cycle.
pub(crate) fn revoke_for_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<Vec<Uuid>, StoreError> {
    #[derive(QueryableByName)]
    struct Revoked {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let revoked: Vec<Revoked> = diesel::sql_query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
          WHERE id IN (SELECT id FROM sessions
                        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
                          AND id IS DISTINCT FROM $3
                        ORDER BY id
                          FOR UPDATE)
         RETURNING id",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Text, _>(reason)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(keep)
    .load(conn)?;
    Ok(revoked.into_iter().map(|r| r.id).collect())
}

/// The live sessions started from a browser session, or those of one user with one
/// client (`by`), locked in id order (see [`revoke_for_user`]) for their revocation.
pub(crate) fn live_ids_locked(
    conn: &mut PgConnection,
    by: Started<'_>,
) -> Result<Vec<Uuid>, StoreError> {
    let live = sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now));
    let ids = match by {
        // `browser_session_id` is not in schema.rs (see migration 000104).
        Started::InBrowserSession(id) => diesel::sql_query(
            "SELECT id FROM sessions
              WHERE browser_session_id = $1 AND revoked_at IS NULL AND expires_at > now()
              ORDER BY id FOR UPDATE",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .load::<Id>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect(),
        Started::ByUserWithClient(user_id, client_id) => live
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::client_id.eq(client_id))
            .order(sessions::id.asc())
            .select(sessions::id)
            .for_update()
            .load(conn)?,
    };
    Ok(ids)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

/// Records the browser session a new session was started from (the code flow).
pub(crate) fn set_browser_session(
    conn: &mut PgConnection,
    id: Uuid,
    browser_session_id: Uuid,
) -> Result<(), StoreError> {
    diesel::sql_query("UPDATE sessions SET browser_session_id = $2 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(browser_session_id)
        .execute(conn)?;
    Ok(())
}

/// Which sessions [`live_ids_locked`] finds.
pub(crate) enum Started<'a> {
    InBrowserSession(Uuid),
    ByUserWithClient(Uuid, &'a str),
}

/// Hands the sessions started from browser session `from` over to `to` (the same
/// person signed in again in that browser).
pub(crate) fn move_to_browser_session(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        // Locked in id order first, as every statement that locks several sessions.
        "UPDATE sessions SET browser_session_id = $2
          WHERE id = ANY (ARRAY(SELECT id FROM sessions WHERE browser_session_id = $1
                                 ORDER BY id FOR UPDATE))",
    )
    .bind::<diesel::sql_types::Uuid, _>(from)
    .bind::<diesel::sql_types::Uuid, _>(to)
    .execute(conn)?)
}
