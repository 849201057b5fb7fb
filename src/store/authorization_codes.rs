//! `authorization_codes`: RFC 6749 §4.1.2 codes, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::authorization_codes;
use super::StoreError;

#[derive(Insertable)]
#[diesel(table_name = authorization_codes)]
pub(crate) struct NewCode<'a> {
    pub code_hash: &'a [u8],
    pub client_id: &'a str,
    pub user_id: Uuid,
    pub browser_session_id: Uuid,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub code_challenge: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = authorization_codes)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct CodeRow {
    pub client_id: String,
    pub user_id: Uuid,
    pub browser_session_id: Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub session_id: Option<Uuid>,
}

pub(crate) fn insert(conn: &mut PgConnection, new: &NewCode<'_>) -> Result<(), StoreError> {
    diesel::insert_into(authorization_codes::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// The code, locked until the end of the transaction: of two exchanges of one code,
/// the second waits for the first and sees it used.
pub(crate) fn find_for_update(
    conn: &mut PgConnection,
    code_hash: &[u8],
) -> Result<Option<CodeRow>, StoreError> {
    Ok(authorization_codes::table
        .find(code_hash)
        .select(CodeRow::as_select())
        .for_update()
        .first(conn)
        .optional()?)
}

/// Spends the code, recording the session its tokens were issued in.
pub(crate) fn mark_used(
    conn: &mut PgConnection,
    code_hash: &[u8],
    session_id: Uuid,
) -> Result<(), StoreError> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set((
            authorization_codes::used_at.eq(diesel::dsl::now),
            authorization_codes::session_id.eq(session_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops codes that expired more than `keep_minutes` ago (a replay after that is
/// refused as unknown, its tokens long revoked or expired).
pub(crate) fn delete_expired(
    conn: &mut PgConnection,
    keep_minutes: i32,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "DELETE FROM authorization_codes WHERE expires_at < now() - make_interval(mins => $1)",
    )
    .bind::<diesel::sql_types::Integer, _>(keep_minutes)
    .execute(conn)?)
}
