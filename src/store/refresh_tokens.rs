use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

use super::StoreError;

/// What a successful rotation returns: enough to mint the access token.
#[derive(Debug, Queryable)]
pub(crate) struct Rotated {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub scope: String,
    pub username: String,
    pub roles: Vec<String>,
    /// The access token's `iat`: PostgreSQL's clock (unix seconds, rounded down), read
    /// after the user row was locked and before the statement commits.
    pub issued_at: i64,
}

pub struct Rotation<'a> {
    pub token_hash: &'a [u8; 32],
    pub successor_hash: &'a [u8; 32],
    pub successor_sealed: &'a [u8],
    pub idle_seconds: f64,
    pub client_id: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Spends a live refresh token and issues its successor, in one statement (one round
/// trip, atomic). The `used_at IS NULL` condition is the race guard: of any number of
/// concurrent rotations of one token exactly one matches; the others wait for its row
/// lock, re-check, and get no row.
///
/// Roles and a change to them (admin PATCH, which updates the user row and then, in the
/// same transaction, records a user-token revocation whose not-before is
/// `clock_timestamp()`): the statement reads the user row `FOR SHARE`, so it is ordered
/// against the change by the row lock, as a login is.
/// - The change locked the row first: this statement waits for its commit, and (read
///   committed) then reads the row as it committed. The token carries the new roles.
/// - This statement locked the row first: the change's update waits until this
///   statement has committed, so its not-before is read later than this statement's
///   `clock_timestamp()`, which is the token's `iat` (rounded down; the not-before is
///   rounded up). The token carries the old roles, and its `iat` is before the
///   not-before: the revocation denies it.
///
/// Either way no token with the old roles has an `iat` at or after the not-before. The
/// `iat` comes from the database, like the not-before, so the instance's clock plays no
/// part.
#[tracing::instrument(
    name = "refresh_token.rotate",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) fn rotate(
    conn: &mut PgConnection,
    r: &Rotation<'_>,
) -> Result<Option<Rotated>, StoreError> {
    Ok(RotateQuery(r).get_result::<Rotated>(conn).optional()?)
}

/// The rotation statement as a query diesel prepares once per connection and reuses
/// (a `sql_query` is parsed and planned on every call, in an extra round trip).
struct RotateQuery<'a>(&'a Rotation<'a>);

impl QueryId for RotateQuery<'_> {
    type QueryId = RotateQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for RotateQuery<'_> {
    type SqlType = (SqlUuid, SqlUuid, Text, Text, Array<Text>, BigInt);
}

impl RunQueryDsl<PgConnection> for RotateQuery<'_> {}

impl QueryFragment<Pg> for RotateQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let r = self.0;
        // The owner's row is locked (and its current version read) before the token is
        // spent; see [`rotate`] for why.
        out.push_sql(
            "WITH owner AS MATERIALIZED (
                SELECT u.id, u.username, u.roles
                  FROM users AS u
                 WHERE u.id = (SELECT s.user_id
                                 FROM refresh_tokens AS rt
                                 JOIN sessions AS s ON s.id = rt.session_id
                                WHERE rt.token_hash = ",
        );
        out.push_bind_param::<Bytea, _>(&r.token_hash[..])?;
        out.push_sql(
            ")
                   AND NOT u.disabled
                   FOR SHARE
            ), spent AS (
                UPDATE refresh_tokens AS rt
                   SET used_at = now(), successor_hash = ",
        );
        out.push_bind_param::<Bytea, _>(&r.successor_hash[..])?;
        out.push_sql(
            "
                  FROM sessions AS s, owner AS u
                 WHERE rt.token_hash = ",
        );
        out.push_bind_param::<Bytea, _>(&r.token_hash[..])?;
        out.push_sql(
            "
                   AND rt.used_at IS NULL
                   AND rt.expires_at > now()
                   AND s.id = rt.session_id
                   AND s.revoked_at IS NULL
                   AND s.expires_at > now()
                   AND s.client_id = ",
        );
        out.push_bind_param::<Text, _>(&r.client_id)?;
        out.push_sql(
            "
                   AND u.id = s.user_id
             RETURNING s.id AS session_id, s.user_id, s.scope,
                       s.expires_at AS session_expires_at, u.username, u.roles
            ), issued AS (
                INSERT INTO refresh_tokens (token_hash, session_id, expires_at, retry_sealed)
                SELECT ",
        );
        out.push_bind_param::<Bytea, _>(&r.successor_hash[..])?;
        out.push_sql(", session_id, LEAST(now() + make_interval(secs => ");
        out.push_bind_param::<Double, _>(&r.idle_seconds)?;
        out.push_sql("), session_expires_at), ");
        out.push_bind_param::<Bytea, _>(&r.successor_sealed)?;
        out.push_sql(
            "
                  FROM spent
             RETURNING expires_at
            ), touched AS (
                UPDATE sessions
                   SET last_used_at = now(),
                       ip = COALESCE(",
        );
        out.push_bind_param::<Nullable<Text>, _>(&r.ip)?;
        out.push_sql(", sessions.ip), user_agent = COALESCE(");
        out.push_bind_param::<Nullable<Text>, _>(&r.user_agent)?;
        out.push_sql(
            ", sessions.user_agent)
                  FROM spent
                 WHERE sessions.id = spent.session_id
            )
            SELECT spent.session_id, spent.user_id, spent.scope, spent.username, spent.roles,
                   -- Evaluated for the output row, so after the owner's row was locked.
                   floor(extract(epoch FROM clock_timestamp()))::bigint AS issued_at
              FROM spent, issued",
        );
        Ok(())
    }
}

/// Everything about a refresh token that did not rotate, to tell why.
#[derive(Debug, QueryableByName)]
pub(crate) struct TokenState {
    #[diesel(sql_type = SqlUuid)]
    pub session_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = Text)]
    pub client_id: String,
    #[diesel(sql_type = Text)]
    pub scope: String,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Bool)]
    pub user_disabled: bool,
    #[diesel(sql_type = Bool)]
    pub session_live: bool,
    #[diesel(sql_type = Bool)]
    pub token_expired: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub used_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    pub within_grace: bool,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub successor_sealed: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub successor_expires_at: Option<DateTime<Utc>>,
    /// The successor has itself been rotated already.
    #[diesel(sql_type = Bool)]
    pub successor_spent: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
}

pub(crate) fn state(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    grace_seconds: f64,
) -> Result<Option<TokenState>, StoreError> {
    const STATE: &str = "
        SELECT rt.session_id, s.user_id, s.client_id, s.scope, u.username,
               u.disabled AS user_disabled,
               (s.revoked_at IS NULL AND s.expires_at > now()) AS session_live,
               (rt.expires_at <= now()) AS token_expired,
               rt.used_at,
               (rt.used_at IS NOT NULL AND rt.used_at > now() - make_interval(secs => $2))
                   AS within_grace,
               succ.retry_sealed AS successor_sealed,
               succ.expires_at AS successor_expires_at,
               (succ.used_at IS NOT NULL) AS successor_spent,
               rt.created_at, rt.expires_at
          FROM refresh_tokens rt
          JOIN sessions s ON s.id = rt.session_id
          JOIN users u ON u.id = s.user_id
          LEFT JOIN refresh_tokens succ ON succ.token_hash = rt.successor_hash
         WHERE rt.token_hash = $1";
    Ok(diesel::sql_query(STATE)
        .bind::<Bytea, _>(&token_hash[..])
        .bind::<Double, _>(grace_seconds)
        .get_result::<TokenState>(conn)
        .optional()?)
}

/// Forgets sealed successors once the grace window that needed them has closed.
pub(crate) fn clear_expired_successors(
    conn: &mut PgConnection,
    grace_seconds: f64,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE refresh_tokens SET retry_sealed = NULL
          WHERE retry_sealed IS NOT NULL
            AND created_at <= now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(grace_seconds)
    .execute(conn)?)
}
