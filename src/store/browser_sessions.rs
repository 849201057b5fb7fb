//! `browser_sessions`: people signed in on Tessera's login page (single sign-on).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{browser_sessions, users};
use super::StoreError;

#[derive(Insertable)]
#[diesel(table_name = browser_sessions)]
pub(crate) struct NewBrowserSession<'a> {
    pub id: Uuid,
    pub secret_hash: &'a [u8],
    pub user_id: Uuid,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A live browser session and the user signed in to it.
#[derive(Clone, Debug, Queryable)]
pub(crate) struct LiveBrowserSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub auth_time: DateTime<Utc>,
    pub username: String,
}

pub(crate) fn insert(
    conn: &mut PgConnection,
    new: &NewBrowserSession<'_>,
) -> Result<(), StoreError> {
    diesel::insert_into(browser_sessions::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// The session whose cookie secret hashes to `secret_hash`, if it is still live: not
/// ended, not expired, and its user enabled with no password change since it signed in.
pub(crate) fn find_live(
    conn: &mut PgConnection,
    secret_hash: &[u8],
) -> Result<Option<LiveBrowserSession>, StoreError> {
    Ok(browser_sessions::table
        .inner_join(users::table)
        .filter(browser_sessions::secret_hash.eq(secret_hash))
        .filter(browser_sessions::ended_at.is_null())
        .filter(browser_sessions::expires_at.gt(diesel::dsl::now))
        .filter(users::disabled.eq(false))
        .filter(users::password_changed_at.le(browser_sessions::auth_time))
        .select((
            browser_sessions::id,
            browser_sessions::user_id,
            browser_sessions::auth_time,
            users::username,
        ))
        .first(conn)
        .optional()?)
}

/// Ends a session; false if it had already ended or does not exist.
pub(crate) fn end(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    Ok(diesel::update(
        browser_sessions::table
            .find(id)
            .filter(browser_sessions::ended_at.is_null()),
    )
    .set(browser_sessions::ended_at.eq(diesel::dsl::now))
    .execute(conn)?
        == 1)
}

/// Whether a session has neither ended nor expired, locking it (`FOR SHARE`) until the
/// end of the transaction: a sign-out racing this transaction waits for it, and then
/// sees, and ends, what it started.
pub(crate) fn lock_if_live(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    Ok(browser_sessions::table
        .find(id)
        .filter(browser_sessions::ended_at.is_null())
        .filter(browser_sessions::expires_at.gt(diesel::dsl::now))
        .select(browser_sessions::id)
        .for_share()
        .first::<Uuid>(conn)
        .optional()?
        .is_some())
}

/// The user a session (live or not) belongs to.
pub(crate) fn owner(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(browser_sessions::table
        .find(id)
        .select(browser_sessions::user_id)
        .first(conn)
        .optional()?)
}

/// Drops sessions that expired or ended more than `keep_days` ago.
pub(crate) fn delete_expired(conn: &mut PgConnection, keep_days: i32) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "DELETE FROM browser_sessions
          WHERE LEAST(expires_at, COALESCE(ended_at, expires_at)) < now() - make_interval(days => $1)",
    )
    .bind::<diesel::sql_types::Integer, _>(keep_days)
    .execute(conn)?)
}
