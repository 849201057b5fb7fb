//! A session's refresh chain: the generation counter on its row, moved on by one
//! conditional update per refresh.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

use super::StoreError;

/// One refresh: the link presented and what to record of the request.
pub(crate) struct Rotation<'a> {
    pub session_id: Uuid,
    /// The generation presented; the rotation issues `generation + 1`.
    pub generation: i64,
    pub client_id: &'a str,
    pub idle_seconds: f64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// What a successful rotation returns: enough to mint the access token.
#[derive(Debug, Queryable)]
pub(crate) struct Rotated {
    pub user_id: Uuid,
    pub scope: String,
    pub username: String,
    pub roles: Vec<String>,
    /// The generation now live: the successor's.
    pub generation: i64,
    /// The access token's `iat`: PostgreSQL's clock (unix seconds, rounded down), read
    /// after the session row was locked and updated, before the statement commits.
    pub issued_at: i64,
}

/// Moves the chain on by one, if `generation` is the live one: the whole of a refresh,
/// one statement that touches one row (one round trip; a HOT update, since it changes
/// no indexed column and the table leaves room in its pages). The generation condition
/// is the race guard: of any number of concurrent rotations of one link exactly one
/// matches; the others wait for its row lock, re-check the row as it committed, and
/// get nothing.
///
/// Roles and a change to them: the row carries the roles its tokens get, and a change
/// to a user's roles updates the rows of the user's sessions (a trigger, in the same
/// transaction, before that transaction records the revocation of the user's tokens
/// with a not-before of `clock_timestamp()`). Both take this row's lock, so:
/// - The change locked the row first: this update waits for its commit, re-reads the
///   row and returns the new roles.
/// - This update locked the row first: the change waits until it has committed, so its
///   not-before is read later than this statement's `clock_timestamp()`, which is the
///   token's `iat` (rounded down; the not-before is rounded up). The token carries the
///   old roles and is older than the not-before: the revocation denies it.
///
/// A user disabled or deleted, or its password reset, ends the session rows in the same
/// way. The `iat` comes from the database, like the not-before, so no instance's clock
/// plays a part.
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

/// The rotation statement; its parameters, in order: the idle lifetime in seconds, the
/// request's ip and user agent, the session id, the generation presented, the client id.
/// `bench/sql/pgbench_refresh.sql` is the same statement: keep them in step.
pub(crate) const ROTATE_SQL: &str = "UPDATE sessions
    SET generation = generation + 1,
        rotated_at = now(),
        last_used_at = now(),
        refresh_expires_at = LEAST(now() + make_interval(secs => $1), expires_at),
        ip = COALESCE($2, ip),
        user_agent = COALESCE($3, user_agent)
  WHERE id = $4
    AND generation = $5
    AND client_id = $6
    AND revoked_at IS NULL
    AND expires_at > now()
    AND refresh_expires_at > now()
RETURNING user_id, scope, username, roles, generation,
          -- Evaluated for the updated row, so after its lock was taken.
          floor(extract(epoch FROM clock_timestamp()))::bigint";

/// The rotation as a query diesel prepares once per connection and reuses (a
/// `sql_query` is parsed and planned on every call, in an extra round trip): the text
/// of [`ROTATE_SQL`], its `$n` bound in order.
struct RotateQuery<'a>(&'a Rotation<'a>);

impl QueryId for RotateQuery<'_> {
    type QueryId = RotateQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for RotateQuery<'_> {
    type SqlType = (SqlUuid, Text, Text, Array<Text>, BigInt, BigInt);
}

impl RunQueryDsl<PgConnection> for RotateQuery<'_> {}

impl QueryFragment<Pg> for RotateQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let r = self.0;
        let mut rest = ROTATE_SQL;
        for n in 1..=6 {
            let placeholder = format!("${n}");
            let at = rest
                .find(&placeholder)
                .expect("ROTATE_SQL names $1 to $6 in order");
            out.push_sql(&rest[..at]);
            match n {
                1 => out.push_bind_param::<Double, _>(&r.idle_seconds)?,
                2 => out.push_bind_param::<Nullable<Text>, _>(&r.ip)?,
                3 => out.push_bind_param::<Nullable<Text>, _>(&r.user_agent)?,
                4 => out.push_bind_param::<SqlUuid, _>(&r.session_id)?,
                5 => out.push_bind_param::<BigInt, _>(&r.generation)?,
                _ => out.push_bind_param::<Text, _>(&r.client_id)?,
            }
            rest = &rest[at + placeholder.len()..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// A chain as it stands, to tell why a link did not rotate, to introspect or to revoke
/// one.
#[derive(Debug, QueryableByName)]
pub(crate) struct ChainState {
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = Text)]
    pub client_id: String,
    #[diesel(sql_type = Text)]
    pub scope: String,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Array<Text>)]
    pub roles: Vec<String>,
    /// The live generation.
    #[diesel(sql_type = BigInt)]
    pub generation: i64,
    /// Not revoked, within its absolute lifetime, and its live token within its idle one.
    #[diesel(sql_type = Bool)]
    pub live: bool,
    /// Not revoked and within its absolute lifetime (its live token may be idle-expired).
    #[diesel(sql_type = Bool)]
    pub open: bool,
    /// The live generation was issued by a rotation less than the grace window ago.
    #[diesel(sql_type = Bool)]
    pub within_grace: bool,
    /// When the live generation was issued.
    #[diesel(sql_type = Timestamptz)]
    pub issued_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub refresh_expires_at: DateTime<Utc>,
    /// PostgreSQL's clock when the row was read (unix seconds, rounded down).
    #[diesel(sql_type = BigInt)]
    pub read_at: i64,
}

const STATE: &str = "
    SELECT user_id, client_id, scope, username, roles, generation,
           (revoked_at IS NULL AND expires_at > now() AND refresh_expires_at > now()) AS live,
           (revoked_at IS NULL AND expires_at > now()) AS open,
           (rotated_at IS NOT NULL AND rotated_at > now() - make_interval(secs => $2))
               AS within_grace,
           COALESCE(rotated_at, created_at) AS issued_at,
           refresh_expires_at,
           floor(extract(epoch FROM clock_timestamp()))::bigint AS read_at
      FROM sessions
     WHERE id = $1";

/// The chain of a session, read as it last committed.
pub(crate) fn state(
    conn: &mut PgConnection,
    session_id: Uuid,
    grace_seconds: f64,
) -> Result<Option<ChainState>, StoreError> {
    Ok(diesel::sql_query(STATE)
        .bind::<SqlUuid, _>(session_id)
        .bind::<Double, _>(grace_seconds)
        .get_result::<ChainState>(conn)
        .optional()?)
}

/// The chain of a session with its row locked `FOR SHARE` until the transaction ends,
/// and PostgreSQL's clock read after the lock: a grace retry mints from it, ordered
/// against a role change as a rotation is (see [`rotate`]). Run it in a transaction.
pub(crate) fn state_locked(
    conn: &mut PgConnection,
    session_id: Uuid,
    grace_seconds: f64,
) -> Result<Option<ChainState>, StoreError> {
    diesel::sql_query("SELECT 1 FROM sessions WHERE id = $1 FOR SHARE")
        .bind::<SqlUuid, _>(session_id)
        .execute(conn)?;
    state(conn, session_id, grace_seconds)
}
