use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::clients;
use super::StoreError;

#[derive(Clone, Debug, Queryable, Selectable)]
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
}

#[derive(Insertable)]
#[diesel(table_name = clients)]
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub confidential: bool,
    pub secret_hash: Option<&'a [u8]>,
    pub grant_types: &'a [String],
    pub scopes: &'a [String],
    pub audiences: &'a [String],
    pub access_token_ttl_seconds: Option<i32>,
}

pub fn find(conn: &mut PgConnection, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    Ok(clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut PgConnection, new: &NewClient<'_>) -> Result<ClientRow, StoreError> {
    Ok(diesel::insert_into(clients::table)
        .values(new)
        .returning(ClientRow::as_returning())
        .get_result(conn)?)
}
