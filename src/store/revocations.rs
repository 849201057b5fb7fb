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
    pub generation: i64,
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

/// A place in the order revocations committed in: after the revocation `id` of the
/// transaction that moved the generation to `generation`. `(0, nil)` is before all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    pub generation: i64,
    pub id: Uuid,
}

impl Position {
    pub(crate) const START: Position = Position {
        generation: 0,
        id: Uuid::nil(),
    };

    pub(crate) fn of(row: &RevocationRow) -> Self {
        Self {
            generation: row.generation,
            id: row.id,
        }
    }
}

/// Revocations after `after` in commit order, at most `limit`; with `live_only`, those
/// whose entry still matters.
pub(crate) fn after(
    conn: &mut PgConnection,
    after: Position,
    live_only: bool,
    limit: i64,
) -> Result<Vec<RevocationRow>, StoreError> {
    let mut query = revocations::table
        .filter(
            revocations::generation
                .gt(after.generation)
                .or(revocations::generation
                    .eq(after.generation)
                    .and(revocations::id.gt(after.id))),
        )
        .order((revocations::generation.asc(), revocations::id.asc()))
        .limit(limit)
        .select(RevocationRow::as_select())
        .into_boxed();
    if live_only {
        query = query.filter(revocations::expires_at.gt(diesel::dsl::now));
    }
    Ok(query.load(conn)?)
}

/// The position of the latest committed revocation.
pub(crate) fn last_position(conn: &mut PgConnection) -> Result<Position, StoreError> {
    Ok(revocations::table
        .order((revocations::generation.desc(), revocations::id.desc()))
        .select((revocations::generation, revocations::id))
        .first::<(i64, Uuid)>(conn)
        .optional()?
        .map_or(Position::START, |(generation, id)| Position {
            generation,
            id,
        }))
}

/// When the revocation at `position` was recorded: `None` when this database does not
/// hold it, `Some(None)` for the start.
pub(crate) fn recorded_at(
    conn: &mut PgConnection,
    position: Position,
) -> Result<Option<Option<DateTime<Utc>>>, StoreError> {
    if position == Position::START {
        return Ok(Some(None));
    }
    Ok(revocations::table
        .filter(revocations::generation.eq(position.generation))
        .filter(revocations::id.eq(position.id))
        .select(revocations::created_at)
        .first::<DateTime<Utc>>(conn)
        .optional()?
        .map(Some))
}

/// Whether a recorded revocation denies a client's own token (by its id, or every
/// token of the client issued before a not-before): the feed's check of its
/// subscribers, which must not depend on Redis.
pub(crate) fn denies_client_token(
    conn: &mut PgConnection,
    jti: &str,
    client_id: &str,
    issued_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        revocations::table
            .filter(revocations::expires_at.gt(diesel::dsl::now))
            .filter(
                revocations::kind
                    .eq(RevocationKind::Token.as_str())
                    .and(revocations::value.eq(jti))
                    .or(revocations::kind
                        .eq(RevocationKind::Client.as_str())
                        .and(revocations::value.eq(client_id))
                        .and(revocations::not_before.gt(issued_at))),
            ),
    ))
    .get_result(conn)?)
}

/// Every revocation still in force, in commit order, and the position of the latest
/// one (in force or not), read in one snapshot: streaming from that position misses
/// nothing the list lacks.
pub(crate) fn snapshot(
    conn: &mut PgConnection,
) -> Result<(Vec<RevocationRow>, Position), StoreError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let rows = revocations::table
                .filter(revocations::expires_at.gt(diesel::dsl::now))
                .order((revocations::generation.asc(), revocations::id.asc()))
                .select(RevocationRow::as_select())
                .load(conn)?;
            let last = last_position(conn)?;
            Ok((rows, last))
        })
}
