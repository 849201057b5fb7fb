use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::clients;
use super::StoreError;

#[derive(Clone, Debug, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = clients)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub confidential: bool,
    pub secret_hash: Option<Vec<u8>>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl_seconds: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub browser_mode: bool,
    pub introspect_any: bool,
    pub redirects: Redirects,
    pub first_party: bool,
}

/// Where a client may send the browser: the `redirects` column (JSONB).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    diesel::FromSqlRow,
    diesel::AsExpression,
)]
#[diesel(sql_type = diesel::sql_types::Jsonb)]
pub struct Redirects {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
}

impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for Redirects {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let value = <serde_json::Value as diesel::deserialize::FromSql<
            diesel::sql_types::Jsonb,
            diesel::pg::Pg,
        >>::from_sql(bytes)?;
        Ok(serde_json::from_value(value)?)
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for Redirects {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        // JSONB's binary format: a version byte, then the JSON text.
        out.write_all(&[1])?;
        serde_json::to_writer(&mut *out, self)?;
        Ok(diesel::serialize::IsNull::No)
    }
}

#[derive(Insertable)]
#[diesel(table_name = clients)]
pub(crate) struct NewClient<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub confidential: bool,
    pub secret_hash: Option<&'a [u8]>,
    pub grant_types: &'a [String],
    pub scopes: &'a [String],
    pub audiences: &'a [String],
    pub access_token_ttl_seconds: Option<i32>,
    pub browser_mode: bool,
    pub introspect_any: bool,
    pub redirects: &'a Redirects,
    pub first_party: bool,
}

pub(crate) fn find(
    conn: &mut PgConnection,
    client_id: &str,
) -> Result<Option<ClientRow>, StoreError> {
    Ok(clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?)
}

pub(crate) fn insert(
    conn: &mut PgConnection,
    new: &NewClient<'_>,
) -> Result<ClientRow, StoreError> {
    Ok(diesel::insert_into(clients::table)
        .values(new)
        .returning(ClientRow::as_returning())
        .get_result(conn)?)
}

/// Clients ordered by id, after `after` (keyset pagination).
pub(crate) fn list(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ClientRow>, StoreError> {
    let mut query = clients::table.into_boxed();
    if let Some(after) = after {
        query = query.filter(clients::client_id.gt(after.to_owned()));
    }
    Ok(query
        .order(clients::client_id.asc())
        .limit(limit)
        .select(ClientRow::as_select())
        .load(conn)?)
}

/// A partial update; `None` leaves a field as it is.
#[derive(AsChangeset, Default)]
#[diesel(table_name = clients)]
pub(crate) struct ClientChanges {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` clears the override.
    pub access_token_ttl_seconds: Option<Option<i32>>,
    pub browser_mode: Option<bool>,
    pub introspect_any: Option<bool>,
    pub redirects: Option<Redirects>,
    pub first_party: Option<bool>,
}

pub(crate) fn update(
    conn: &mut PgConnection,
    client_id: &str,
    changes: &ClientChanges,
) -> Result<Option<ClientRow>, StoreError> {
    Ok(diesel::update(clients::table.find(client_id))
        .set((changes, clients::updated_at.eq(diesel::dsl::now)))
        .returning(ClientRow::as_returning())
        .get_result(conn)
        .optional()?)
}

/// Replaces the secret; the old one stays valid for `overlap_seconds` (0: not at all).
pub(crate) fn rotate_secret(
    conn: &mut PgConnection,
    client_id: &str,
    new_hash: &[u8],
    overlap_seconds: f64,
) -> Result<Option<ClientRow>, StoreError> {
    use diesel::sql_types::{Bytea, Double, Text};
    Ok(diesel::sql_query(
        "UPDATE clients
            SET previous_secret_hash = CASE WHEN $3 > 0 THEN secret_hash END,
                previous_secret_expires_at =
                    CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
                secret_hash = $2,
                updated_at = now()
          WHERE client_id = $1 AND confidential
      RETURNING *",
    )
    .bind::<Text, _>(client_id)
    .bind::<Bytea, _>(new_hash)
    .bind::<Double, _>(overlap_seconds)
    .get_result::<ClientRow>(conn)
    .optional()?)
}

pub(crate) fn delete(conn: &mut PgConnection, client_id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(clients::table.find(client_id)).execute(conn)? == 1)
}
