//! `consents`: the scopes a user allowed a third-party client.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{clients, consents};
use super::StoreError;

/// A remembered consent, with the client's display name.
#[derive(Clone, Debug, Queryable)]
pub(crate) struct ConsentRow {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: DateTime<Utc>,
}

/// The scopes the user allowed this client, if any.
pub(crate) fn find(
    conn: &mut PgConnection,
    user_id: Uuid,
    client_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(consents::scopes)
        .first(conn)
        .optional()?)
}

/// Whether the user allowed the client every one of `scopes`, locking the consent
/// (`FOR SHARE`) until the end of the transaction, so a withdrawal racing it waits and
/// then sees what it started.
pub(crate) fn lock_if_covers(
    conn: &mut PgConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &[&str],
) -> Result<bool, StoreError> {
    let given: Option<Vec<String>> = consents::table
        .find((user_id, client_id))
        .select(consents::scopes)
        .for_share()
        .first(conn)
        .optional()?;
    Ok(given.is_some_and(|given| scopes.iter().all(|s| given.iter().any(|g| g == s))))
}

/// Adds `scopes` to what the user allowed the client (the union of both).
pub(crate) fn grant(
    conn: &mut PgConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &[String],
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
    diesel::sql_query(
        "INSERT INTO consents (user_id, client_id, scopes) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, client_id) DO UPDATE
            SET scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes)
                                ORDER BY 1),
                granted_at = now()",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Text, _>(client_id)
    .bind::<Array<Text>, _>(scopes)
    .execute(conn)?;
    Ok(())
}

pub(crate) fn list(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<ConsentRow>, StoreError> {
    Ok(consents::table
        .inner_join(clients::table)
        .filter(consents::user_id.eq(user_id))
        .order(consents::client_id.asc())
        .select((
            consents::client_id,
            clients::name,
            consents::scopes,
            consents::granted_at,
        ))
        .load(conn)?)
}

/// Forgets a consent; false if there was none.
pub(crate) fn delete(
    conn: &mut PgConnection,
    user_id: Uuid,
    client_id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::delete(consents::table.find((user_id, client_id))).execute(conn)? == 1)
}
