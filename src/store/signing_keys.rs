use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::signing_keys;
use super::StoreError;
use crate::domain::{KeyState, SigningAlgorithm};

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct SigningKeyRow {
    pub kid: String,
    #[diesel(deserialize_as = String)]
    pub algorithm: SigningAlgorithm,
    #[diesel(deserialize_as = String)]
    pub state: KeyState,
    pub public_jwk: serde_json::Value,
    /// Sealed under the master key; empty once the key is retired and can never sign again.
    pub private_key_sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
}

pub(crate) struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: SigningAlgorithm,
    pub state: KeyState,
    pub public_jwk: &'a serde_json::Value,
    pub private_key_sealed: &'a [u8],
    pub activated_at: Option<DateTime<Utc>>,
}

/// Keys in the JWKS: waiting, signing, and retired ones some token may still carry.
pub(crate) fn published(conn: &mut PgConnection) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::state
                .eq_any([KeyState::Next.as_str(), KeyState::Current.as_str()])
                .or(signing_keys::publish_until.gt(diesel::dsl::now)),
        )
        .order(signing_keys::created_at.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

pub(crate) fn all(conn: &mut PgConnection) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

pub(crate) fn in_state(
    conn: &mut PgConnection,
    state: KeyState,
) -> Result<Option<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .filter(signing_keys::state.eq(state.as_str()))
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub(crate) fn insert(conn: &mut PgConnection, new: &NewSigningKey<'_>) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(new.kid),
            signing_keys::algorithm.eq(new.algorithm.as_str()),
            signing_keys::state.eq(new.state.as_str()),
            signing_keys::public_jwk.eq(new.public_jwk),
            signing_keys::private_key_sealed.eq(new.private_key_sealed),
            signing_keys::activated_at.eq(new.activated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Serialises key life-cycle changes across every Tessera instance sharing the
/// database, for the rest of the current transaction.
pub(crate) fn lock_life_cycle(conn: &mut PgConnection) -> Result<(), StoreError> {
    const KEY_LOCK: i64 = 0x6b65_7973;
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_LOCK})")).execute(conn)?;
    Ok(())
}

/// The database clock at this moment (`clock_timestamp()`), not at the start of the
/// transaction: a revocation recorded after waiting for a row lock must be later than
/// whatever committed while it waited.
pub(crate) fn clock_now(conn: &mut PgConnection) -> Result<DateTime<Utc>, StoreError> {
    Ok(
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
            "clock_timestamp()",
        ))
        .get_result(conn)?,
    )
}

pub(crate) fn db_now(conn: &mut PgConnection) -> Result<DateTime<Utc>, StoreError> {
    Ok(
        diesel::select(diesel::dsl::now.into_sql::<diesel::sql_types::Timestamptz>())
            .get_result(conn)?,
    )
}

/// Retires the signing key: it stays in the JWKS for `publish_seconds` (0 drops it at
/// once) and its private part is wiped, since it will never sign again.
pub(crate) fn retire_current(
    conn: &mut PgConnection,
    publish_seconds: f64,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE signing_keys
            SET state = $2, retired_at = now(),
                publish_until = now() + make_interval(secs => $1),
                private_key_sealed = '\\x'::bytea
          WHERE state = $3",
    )
    .bind::<diesel::sql_types::Double, _>(publish_seconds)
    .bind::<diesel::sql_types::Text, _>(KeyState::Retired.as_str())
    .bind::<diesel::sql_types::Text, _>(KeyState::Current.as_str())
    .execute(conn)?)
}

pub(crate) fn promote_next(conn: &mut PgConnection) -> Result<usize, StoreError> {
    Ok(
        diesel::update(signing_keys::table.filter(signing_keys::state.eq(KeyState::Next.as_str())))
            .set((
                signing_keys::state.eq(KeyState::Current.as_str()),
                signing_keys::activated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?,
    )
}

/// Drops a waiting key (e.g. one of an algorithm no longer configured).
pub(crate) fn delete_next(conn: &mut PgConnection) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(signing_keys::table.filter(signing_keys::state.eq(KeyState::Next.as_str())))
            .execute(conn)?,
    )
}

/// Moves the planned start of the waiting key (its `activated_at`).
pub(crate) fn set_next_activation(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(
        diesel::update(signing_keys::table.filter(signing_keys::state.eq(KeyState::Next.as_str())))
            .set(signing_keys::activated_at.eq(at))
            .execute(conn)?,
    )
}

/// How many stored keys still hold (sealed) private material.
pub(crate) fn count_sealed(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(signing_keys::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "octet_length(private_key_sealed) > 0",
        ))
        .count()
        .get_result(conn)?)
}
