use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::users;
use super::StoreError;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a [String],
}

pub(crate) fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> Result<UserRow, StoreError> {
    Ok(diesel::insert_into(users::table)
        .values(new)
        .returning(UserRow::as_returning())
        .get_result(conn)?)
}

pub(crate) fn find_by_username(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub(crate) fn find_by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user, its row locked against every other change until the transaction ends: a
/// change that decides what to revoke from the row as it was (disabled before? roles
/// before?) must not race another change of the same row.
pub(crate) fn find_by_id_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .optional()?)
}

/// Stores a re-hashed password (same password, new cost) unless the password was
/// changed meanwhile. Returns whether it was stored.
pub(crate) fn upgrade_password_hash(
    conn: &mut PgConnection,
    id: Uuid,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::password_hash.eq(old_hash)),
    )
    .set(users::password_hash.eq(new_hash))
    .execute(conn)?;
    Ok(n == 1)
}

pub(crate) fn count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(users::table.count().get_result(conn)?)
}

/// Sets a new password hash (a real password change: the time is recorded).
pub(crate) fn set_password_hash(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(diesel::dsl::now),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Users ordered by username after `after`, optionally only those whose name contains
/// `search` (case-insensitive, taken literally).
pub(crate) fn list(
    conn: &mut PgConnection,
    search: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>, StoreError> {
    let mut query = users::table.into_boxed();
    if let Some(search) = search {
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(users::username.ilike(format!("%{escaped}%")));
    }
    if let Some(after) = after {
        query = query.filter(users::username.gt(after.to_owned()));
    }
    Ok(query
        .order(users::username.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?)
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub(crate) struct UserChanges {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

pub(crate) fn update(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &UserChanges,
) -> Result<Option<UserRow>, StoreError> {
    if changes.roles.is_none() && changes.disabled.is_none() {
        return find_by_id(conn, id);
    }
    Ok(diesel::update(users::table.find(id))
        .set((changes, users::updated_at.eq(diesel::dsl::now)))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .optional()?)
}

/// The user's roles, if it is still enabled and its password unchanged since
/// `password_changed_at` was read (a re-hash at a new cost is not a change), locking the
/// row against changes until the end of the transaction.
pub(crate) fn unchanged_since_check(
    conn: &mut PgConnection,
    id: Uuid,
    password_changed_at: DateTime<Utc>,
) -> Result<Option<Vec<String>>, StoreError> {
    let current: Option<(DateTime<Utc>, bool, Vec<String>)> = users::table
        .find(id)
        .select((users::password_changed_at, users::disabled, users::roles))
        .for_share()
        .first(conn)
        .optional()?;
    Ok(current
        .filter(|(changed, disabled, _)| *changed == password_changed_at && !disabled)
        .map(|(_, _, roles)| roles))
}

/// The user's roles, if it is still enabled and its password has not changed since
/// `auth_time` (a sign-in on the login page), locking the row against changes until the
/// end of the transaction.
pub(crate) fn signed_in_since(
    conn: &mut PgConnection,
    id: Uuid,
    auth_time: DateTime<Utc>,
) -> Result<Option<Vec<String>>, StoreError> {
    let current: Option<(DateTime<Utc>, bool, Vec<String>)> = users::table
        .find(id)
        .select((users::password_changed_at, users::disabled, users::roles))
        .for_share()
        .first(conn)
        .optional()?;
    Ok(current
        .filter(|(changed, disabled, _)| *changed <= auth_time && !disabled)
        .map(|(_, _, roles)| roles))
}
