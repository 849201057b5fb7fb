use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::revocations;
use super::StoreError;
use crate::domain::RevocationKind;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = revocations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct RevocationRow {
    pub id: Uuid,
    #[diesel(deserialize_as = String)]
    pub kind: RevocationKind,
    pub value: String,
    pub not_before: Option<DateTime<Utc>>,
    pub reason: String,
    pub revoked_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub synced_at: Option<DateTime<Utc>>,
}

#[derive(Insertable)]
#[diesel(table_name = revocations)]
pub(crate) struct NewRevocation<'a> {
    pub id: Uuid,
    #[diesel(serialize_as = String)]
    pub kind: RevocationKind,
    pub value: &'a str,
    pub not_before: Option<DateTime<Utc>>,
    pub reason: &'a str,
    pub revoked_by: &'a str,
    pub expires_at: DateTime<Utc>,
    pub generation: i64,
}

/// Moves the denylist generation forward and returns the new value. The row lock it
/// takes is held until the calling transaction ends, so revocations commit in the
/// order of their generations: once a generation is visible, every revocation of that
/// generation or an earlier one is too. Take it last in a transaction (after every
/// other lock) so it is held only for the final inserts.
pub(crate) fn next_generation(conn: &mut PgConnection) -> Result<i64, StoreError> {
    use super::schema::denylist_generation::dsl;
    Ok(diesel::update(dsl::denylist_generation)
        .set(dsl::generation.eq(dsl::generation + 1))
        .returning(dsl::generation)
        .get_result(conn)?)
}

/// The generation of the latest committed revocation.
pub(crate) fn generation(conn: &mut PgConnection) -> Result<i64, StoreError> {
    use super::schema::denylist_generation::dsl;
    Ok(dsl::denylist_generation
        .select(dsl::generation)
        .get_result(conn)?)
}

pub(crate) fn insert(
    conn: &mut PgConnection,
    rows: Vec<NewRevocation<'_>>,
) -> Result<(), StoreError> {
    if !rows.is_empty() {
        diesel::insert_into(revocations::table)
            .values(rows)
            .execute(conn)?;
    }
    Ok(())
}

/// Which live revocations to read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Live {
    /// All of them.
    All,
    /// Those of a later generation than this, or recorded since the time, if given.
    After {
        generation: i64,
        since: Option<DateTime<Utc>>,
    },
}

/// Revocations whose Redis entry must still exist (see [`Live`]), oldest first.
pub(crate) fn live(conn: &mut PgConnection, which: Live) -> Result<Vec<RevocationRow>, StoreError> {
    let mut query = revocations::table
        .filter(revocations::expires_at.gt(diesel::dsl::now))
        .order(revocations::created_at.asc())
        .select(RevocationRow::as_select())
        .into_boxed();
    match which {
        Live::All => {}
        Live::After {
            generation,
            since: None,
        } => query = query.filter(revocations::generation.gt(generation)),
        Live::After {
            generation,
            since: Some(since),
        } => {
            query = query.filter(
                revocations::generation
                    .gt(generation)
                    .or(revocations::created_at.ge(since)),
            )
        }
    }
    Ok(query.load(conn)?)
}

/// Live revocations not yet confirmed in Redis.
pub(crate) fn unsynced(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<RevocationRow>, StoreError> {
    Ok(revocations::table
        .filter(revocations::synced_at.is_null())
        .filter(revocations::expires_at.gt(diesel::dsl::now))
        .order(revocations::created_at.asc())
        .limit(limit)
        .select(RevocationRow::as_select())
        .load(conn)?)
}

pub(crate) fn mark_synced(conn: &mut PgConnection, ids: &[Uuid]) -> Result<usize, StoreError> {
    Ok(
        diesel::update(revocations::table.filter(revocations::id.eq_any(ids)))
            .set(revocations::synced_at.eq(diesel::dsl::now))
            .execute(conn)?,
    )
}

/// Newest first; `before` is the id of the last row of the previous page.
pub(crate) fn list(
    conn: &mut PgConnection,
    kind: Option<RevocationKind>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RevocationRow>, StoreError> {
    let mut query = revocations::table.into_boxed();
    if let Some(kind) = kind {
        query = query.filter(revocations::kind.eq(kind.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(revocations::id.lt(before));
    }
    Ok(query
        .order(revocations::id.desc())
        .limit(limit)
        .select(RevocationRow::as_select())
        .load(conn)?)
}
