//! Revocation that takes effect at once and is never lost.
//!
//! A revocation is accepted once PostgreSQL has recorded it (`revocations`, in the same
//! transaction as the sessions it ends and its audit events). It is then pushed to the
//! Redis denylist, which every bearer check reads. If Redis is unreachable the row
//! stays marked unsynced and a background job (on every instance) pushes it when Redis
//! is back; if Redis loses its data, the first check notices the missing `ready`
//! marker and rebuilds the list from PostgreSQL before answering, and so does the
//! background pass if it runs first. Every revocation moves a generation counter in
//! PostgreSQL forward; the `ready` marker holds the generation Redis is complete up
//! to, so a Redis that came back from an old snapshot (its marker behind) gets the
//! revocations it lacks within a second. Only a pass that wrote everything up to a
//! generation may set the marker to it. While Redis cannot be read, token checks fail
//! closed.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use uuid::Uuid;

use super::audit::{self, AuditEvent};
use super::tokens::{AccessClaims, LEEWAY};
use super::Tessera;
use super::{chrono_duration, AuthError, RequestContext};
use crate::config::MAX_ACCESS_TOKEN_TTL;
use crate::store::denylist::{DenyEntry, DenyKind, DenyState, RedisUnavailable};
pub use crate::store::revocations::RevocationRow;
use crate::store::revocations::{self, Live, NewRevocation};
use crate::store::{sessions, signing_keys, StoreError};

/// What to revoke.
#[derive(Clone, Debug)]
pub enum Target {
    /// One access token, until it expires (unix seconds).
    AccessToken { jti: String, expires_at: i64 },
    /// One access token known only by its `jti`: denied for the longest lifetime.
    TokenId(String),
    /// A session: its refresh tokens and its live access tokens.
    Session(Uuid),
    /// Every session and live access token of a user.
    User(Uuid),
    /// Every live access token of a user, sessions untouched: the next refresh mints
    /// tokens with what changed (roles).
    UserTokens(Uuid),
    /// Every live access token minted through a client.
    Client(String),
}

/// Per-instance bookkeeping of the denylist's health.
#[derive(Default)]
pub struct DenylistSync {
    /// Set when this instance failed to reach Redis: before trusting Redis again, push
    /// whatever PostgreSQL has that Redis may have missed.
    suspect: AtomicBool,
    rebuild: tokio::sync::Mutex<()>,
    /// The highest `ready` marker this instance has seen in Redis. Markers only move
    /// forward (unless PostgreSQL itself went back: see `clamp_highest_marker`), so one
    /// below it means Redis went back in time (restored from an older
    /// snapshot, failed over to a replica that missed writes): the entries after it
    /// may be gone, and the next check writes them again before it answers.
    highest_marker: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the token has been revoked")]
    Revoked,
    #[error("the revocation list cannot be read: {0}")]
    Unavailable(String),
}

impl From<RedisUnavailable> for CheckError {
    fn from(e: RedisUnavailable) -> Self {
        CheckError::Unavailable(e.to_string())
    }
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Unavailable(e.to_string())
    }
}

fn seconds(d: chrono::Duration) -> Duration {
    Duration::from_secs(u64::try_from(d.num_seconds()).unwrap_or(0))
}

/// Unix seconds, rounded up: a token issued in the second of the revocation is dead.
fn not_before_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn entry_of(row: &RevocationRow, now: DateTime<Utc>) -> Option<DenyEntry> {
    let ttl = seconds(row.expires_at - now);
    if ttl.is_zero() {
        return None;
    }
    Some(DenyEntry {
        kind: DenyKind::parse(&row.kind)?,
        value: row.value.clone(),
        not_before: row.not_before.map(not_before_secs),
        ttl,
    })
}

/// Records the revocations (and what they end) in one transaction, then pushes them
/// to Redis. Succeeds once PostgreSQL has them, even if Redis is down.
#[tracing::instrument(name = "revocation.revoke", level = "debug", skip_all, fields(%reason, targets = targets.len()), err(level = "debug"))]
pub async fn revoke(
    tessera: &Tessera,
    targets: Vec<Target>,
    reason: &str,
    revoked_by: &str,
    events: Vec<AuditEvent>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    revoke_with(
        tessera,
        move |_| Ok(((), targets)),
        reason,
        revoked_by,
        events,
        ctx,
    )
    .await
}

/// Like [`revoke`], with a change that decides the targets run first in the same
/// transaction (a password change and the sessions it ends commit together).
#[tracing::instrument(name = "revocation.revoke_with", level = "debug", skip_all, fields(%reason), err(level = "debug"))]
pub async fn revoke_with<T, F>(
    tessera: &Tessera,
    prepare: F,
    reason: &str,
    revoked_by: &str,
    events: Vec<AuditEvent>,
    ctx: &RequestContext,
) -> Result<T, AuthError>
where
    F: FnOnce(&mut PgConnection) -> Result<(T, Vec<Target>), AuthError> + Send + 'static,
    T: Send + 'static,
{
    let (reason, revoked_by, ctx) = (reason.to_owned(), revoked_by.to_owned(), ctx.clone());
    let (output, rows) = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                let (output, targets) = prepare(conn)?;
                let rows = record(conn, &targets, &reason, &revoked_by, &events, &ctx)?;
                Ok::<_, AuthError>((output, rows))
            })
        })
        .await?;
    for row in &rows {
        tessera
            .metrics
            .revocations
            .with_label_values(&[&row.kind])
            .inc();
    }
    push(tessera, rows).await;
    Ok(output)
}

fn record(
    conn: &mut PgConnection,
    targets: &[Target],
    reason: &str,
    revoked_by: &str,
    events: &[AuditEvent],
    ctx: &RequestContext,
) -> Result<Vec<RevocationRow>, StoreError> {
    let now = signing_keys::clock_now(conn)?;
    // Nothing minted before now can outlive the hard cap on access-token lifetimes (the
    // current settings are not enough: a lifetime may have been lowered, or the client
    // deleted, since a longer-lived token was minted).
    let horizon = now + chrono_duration(MAX_ACCESS_TOKEN_TTL) + chrono_leeway();
    let row = |kind: DenyKind, value: String, not_before, expires_at| RevocationRow {
        id: Uuid::now_v7(),
        kind: kind.as_str().to_owned(),
        value,
        not_before,
        reason: reason.to_owned(),
        revoked_by: revoked_by.to_owned(),
        created_at: now,
        expires_at,
        synced_at: None,
    };
    let mut rows = Vec::with_capacity(targets.len());
    for target in targets {
        match target {
            Target::AccessToken { jti, expires_at } => {
                let until =
                    DateTime::from_timestamp(*expires_at, 0).unwrap_or(now) + chrono_leeway();
                if until > now {
                    rows.push(row(DenyKind::Token, jti.clone(), None, until));
                }
            }
            Target::TokenId(jti) => {
                rows.push(row(DenyKind::Token, jti.clone(), None, horizon));
            }
            Target::Session(sid) => {
                sessions::revoke(conn, *sid, reason)?;
                rows.push(row(DenyKind::Session, sid.to_string(), None, horizon));
            }
            Target::User(user_id) => {
                // Each session by id too: a token minted in one of them after `now`
                // (a refresh racing this revocation) is still caught.
                for sid in sessions::revoke_for_user(conn, *user_id, None, reason)? {
                    rows.push(row(DenyKind::Session, sid.to_string(), None, horizon));
                }
                rows.push(row(DenyKind::User, user_id.to_string(), Some(now), horizon));
            }
            Target::UserTokens(user_id) => {
                rows.push(row(DenyKind::User, user_id.to_string(), Some(now), horizon));
            }
            Target::Client(client_id) => {
                // Other instances may go on minting for this client until their cached
                // record expires: deny those tokens too.
                let not_before =
                    now + chrono_duration(super::clients::CLIENT_CACHE_TTL) + chrono_leeway();
                rows.push(row(
                    DenyKind::Client,
                    client_id.clone(),
                    Some(not_before),
                    horizon,
                ));
            }
        }
    }
    if rows.is_empty() {
        audit::record(conn, events, ctx)?;
        return Ok(rows);
    }
    // Last, so the generation's row lock is held only for the inserts below.
    let generation = revocations::next_generation(conn)?;
    let inserts: Vec<NewRevocation<'_>> = rows
        .iter()
        .map(|r| NewRevocation {
            id: r.id,
            kind: &r.kind,
            value: &r.value,
            not_before: r.not_before,
            reason,
            revoked_by,
            expires_at: r.expires_at,
            generation,
        })
        .collect();
    revocations::insert(conn, &inserts)?;
    audit::record(conn, events, ctx)?;
    Ok(rows)
}

fn chrono_leeway() -> chrono::Duration {
    chrono::Duration::seconds(LEEWAY.as_secs() as i64)
}

/// Pushes rows to Redis and marks them synced; on failure leaves them for the
/// background job and remembers that Redis may be behind.
async fn push(tessera: &Tessera, rows: Vec<RevocationRow>) {
    if rows.is_empty() {
        return;
    }
    let now = Utc::now();
    let entries: Vec<DenyEntry> = rows.iter().filter_map(|r| entry_of(r, now)).collect();
    match tessera.denylist.deny(&entries).await {
        Ok(()) => {
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            if let Err(e) = tessera
                .db
                .run(move |conn| revocations::mark_synced(conn, &ids))
                .await
            {
                tracing::warn!(error = %e, "could not mark revocations as synced; they will be pushed again");
            }
        }
        Err(e) => {
            tessera.metrics.redis_errors.inc();
            tessera.denylist_sync.suspect.store(true, Ordering::Relaxed);
            tracing::warn!(error = %e, "revocation recorded but not yet in Redis; it will be pushed when Redis is back");
        }
    }
}

/// Pushes every live revocation Redis has not confirmed (from any instance).
#[tracing::instrument(name = "revocation.sync_pending", level = "debug", skip_all)]
pub async fn sync_pending(tessera: &Tessera) -> Result<usize, CheckError> {
    const BATCH: i64 = 10_000;
    let mut total = 0;
    loop {
        let rows = tessera
            .db
            .run(|conn| revocations::unsynced(conn, BATCH))
            .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let now = Utc::now();
        let entries: Vec<DenyEntry> = rows.iter().filter_map(|r| entry_of(r, now)).collect();
        tessera.denylist.deny(&entries).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let count = ids.len();
        tessera
            .db
            .run(move |conn| revocations::mark_synced(conn, &ids))
            .await?;
        total += count;
        if (count as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Before a token is trusted again after Redis missed a write, pushes what it missed.
/// One request does the work while the others wait for it; a write that fails while
/// it runs marks the list suspect again, so nothing is cleared unseen.
async fn catch_up(tessera: &Tessera) -> Result<(), CheckError> {
    let lock = &tessera.denylist_sync.rebuild;
    let (_one_at_a_time, waited) = match lock.try_lock() {
        Ok(guard) => (guard, false),
        Err(_) => (lock.lock().await, true),
    };
    if !tessera.denylist_sync.suspect.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    if waited {
        // The attempt this request waited for did not settle it: answer now rather than
        // queue one more attempt (and one more Redis timeout) behind it.
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
        return Err(CheckError::Unavailable(
            "the denylist is catching up with Redis".to_owned(),
        ));
    }
    if let Err(e) = sync_pending(tessera).await {
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
        return Err(e);
    }
    Ok(())
}

/// What to write to Redis again.
#[derive(Clone, Copy, Debug)]
pub enum Rebuild {
    /// Everything, but only if Redis has lost the list (its `ready` marker is gone).
    IfLost,
    /// What Redis may lack: everything if it lost the list (or its marker is ahead of
    /// PostgreSQL), else the revocations of the generations after its marker (Redis came
    /// back from an old snapshot, or a replica missed the latest writes).
    Behind,
    /// As [`Rebuild::Behind`], and the revocations recorded within this long whatever
    /// the marker says.
    Recent(std::time::Duration),
    /// Every live revocation, whatever Redis says.
    All,
}

/// Writes live revocations to Redis (see [`Rebuild`]), then moves the `ready` marker to
/// the generation written. Any instance may run it, any number at once: entries only
/// ever move forward, and the marker is set only by a pass that found Redis with the
/// data it started on (see `Denylist::complete`).
#[tracing::instrument(name = "revocation.rebuild", level = "debug", skip_all, fields(?scope), err(level = "debug"))]
pub async fn rebuild(tessera: &Tessera, scope: Rebuild) -> Result<usize, CheckError> {
    if matches!(scope, Rebuild::Behind) && up_to_date(tessera).await? {
        // The every-second case, settled without the lock token checks may wait on.
        return Ok(0);
    }
    let _one_at_a_time = tessera.denylist_sync.rebuild.lock().await;
    let marker = tessera.denylist.marker().await?;
    if matches!(scope, Rebuild::IfLost) && marker.is_some() {
        return Ok(0);
    }
    let generation = tessera.db.run(revocations::generation).await?;
    clamp_highest_marker(tessera, generation);
    // `from` is the marker an incremental pass builds on; `None` for a complete one.
    let (which, from) = match (scope, marker) {
        (Rebuild::All, _) => (Live::All, None),
        (_, None) => {
            tracing::warn!("Redis has lost the denylist; rebuilding it from PostgreSQL");
            (Live::All, None)
        }
        (_, Some(m)) if m > generation => {
            tracing::warn!(
                marker = m,
                generation,
                "the denylist in Redis claims a generation PostgreSQL never reached; \
                 rebuilding it from PostgreSQL"
            );
            (Live::All, None)
        }
        (Rebuild::Behind | Rebuild::IfLost, Some(m)) if m == generation => return Ok(0),
        (Rebuild::Behind | Rebuild::IfLost, Some(m)) => (
            Live::After {
                generation: m,
                since: None,
            },
            Some(m),
        ),
        (Rebuild::Recent(within), Some(m)) => (
            Live::After {
                generation: m,
                since: Some(Utc::now() - chrono_duration(within)),
            },
            Some(m),
        ),
    };
    // Cleared before reading, so a write that fails from here on keeps it set.
    let was_suspect = tessera.denylist_sync.suspect.swap(false, Ordering::AcqRel);
    // Only a marker ahead of PostgreSQL (a restored database) may be lowered.
    let lower = marker.is_some_and(|m| m > generation);
    let rebuilt = rewrite(tessera, which, from, generation, lower).await;
    if rebuilt.is_err() && was_suspect {
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
    }
    let entries = rebuilt?;
    match from {
        None if !matches!(scope, Rebuild::All) => {
            tracing::warn!(entries, generation, "rebuilt the denylist from PostgreSQL")
        }
        Some(m) if m < generation => tracing::debug!(
            entries,
            from = m,
            generation,
            "wrote the revocations Redis may have missed"
        ),
        _ => {}
    }
    Ok(entries)
}

/// A PostgreSQL restored from a backup is behind markers seen before; from then on
/// only markers up to its generation are real.
fn clamp_highest_marker(tessera: &Tessera, generation: i64) {
    tessera
        .denylist_sync
        .highest_marker
        .fetch_min(generation, Ordering::AcqRel);
}

/// Whether Redis's marker names PostgreSQL's current generation.
async fn up_to_date(tessera: &Tessera) -> Result<bool, CheckError> {
    let marker = tessera.denylist.marker().await?;
    if marker.is_none() {
        return Ok(false);
    }
    let generation = tessera.db.run(revocations::generation).await?;
    clamp_highest_marker(tessera, generation);
    Ok(marker == Some(generation))
}

/// Writes the revocations `which` selects and, if Redis kept its data meanwhile, sets
/// the marker to `generation` (read before the rows, so they include all of it).
async fn rewrite(
    tessera: &Tessera,
    which: Live,
    from: Option<i64>,
    generation: i64,
    lower: bool,
) -> Result<usize, CheckError> {
    let mut pass = tessera.denylist.begin().await?;
    let rows = tessera
        .db
        .run(move |conn| revocations::live(conn, which))
        .await?;
    let now = Utc::now();
    let entries: Vec<DenyEntry> = rows.iter().filter_map(|r| entry_of(r, now)).collect();
    tessera.denylist.deny_in(&mut pass, &entries).await?;
    let unsynced: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.synced_at.is_none())
        .map(|r| r.id)
        .collect();
    if !unsynced.is_empty() {
        tessera
            .db
            .run(move |conn| revocations::mark_synced(conn, &unsynced))
            .await?;
    }
    let set = tessera
        .denylist
        .complete(pass, from, generation, lower)
        .await?;
    if !set && from.is_none() {
        // Redis lost its data while this pass wrote: what it wrote may be gone too.
        return Err(CheckError::Unavailable(
            "Redis lost data while the denylist was being rebuilt".to_owned(),
        ));
    }
    // An incremental pass whose marker moved meanwhile leaves it to the pass that moved
    // it (or, if the marker is gone, to the next check, which rebuilds everything).
    Ok(entries.len())
}

/// Fails unless the denylist positively says the token is alive.
#[tracing::instrument(name = "revocation.ensure_not_revoked", level = "debug", skip_all, fields(jti = %claims.jti), err(level = "debug"))]
pub async fn ensure_not_revoked(
    tessera: &Tessera,
    claims: &AccessClaims,
) -> Result<(), CheckError> {
    if tessera.denylist_sync.suspect.load(Ordering::Acquire) {
        catch_up(tessera).await?;
    }
    let user = super::tokens::user_id(claims).map(|u| u.to_string());
    let check = || {
        tessera.denylist.check(
            &claims.jti,
            claims.sid.as_deref(),
            user.as_deref(),
            &claims.client_id,
        )
    };
    let mut deny = match check().await {
        Ok(d) => d,
        Err(e) => {
            tessera.metrics.redis_errors.inc();
            tessera.denylist_sync.suspect.store(true, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    let sync = &tessera.denylist_sync;
    let went_back = |deny: &DenyState| {
        deny.marker
            .is_some_and(|m| m < sync.highest_marker.fetch_max(m, Ordering::AcqRel))
    };
    if !deny.ready || went_back(&deny) {
        let scope = if deny.ready {
            tracing::warn!(
                marker = deny.marker,
                seen = sync.highest_marker.load(Ordering::Acquire),
                "the denylist in Redis went back to an older generation; writing what it lost"
            );
            Rebuild::Behind
        } else {
            Rebuild::IfLost
        };
        rebuild(tessera, scope).await?;
        deny = check().await?;
        if !deny.ready || went_back(&deny) {
            return Err(CheckError::Unavailable(
                "the denylist is being rebuilt".to_owned(),
            ));
        }
    }
    let before = |nb: Option<i64>| nb.is_some_and(|nb| claims.iat < nb);
    if deny.token || deny.session || before(deny.user_not_before) || before(deny.client_not_before)
    {
        return Err(CheckError::Revoked);
    }
    Ok(())
}

/// What an administrator revokes.
pub enum Revoke {
    /// A presented token: a refresh token ends its session, an access token is denied
    /// by its `jti` until it expires.
    Token(String),
    /// An access token known only by its `jti`.
    TokenId(String),
    /// A session by id.
    Session(Uuid),
}

/// An administrator's revocation (admin API), audited with the reason. Answers the
/// kind and value of what is now denied.
#[tracing::instrument(name = "revocation.revoke_by_admin", level = "debug", skip_all, fields(%reason), err(level = "debug"))]
pub async fn revoke_by_admin(
    tessera: &Tessera,
    what: Revoke,
    reason: &str,
    actor: &super::Actor,
) -> Result<(&'static str, String), AuthError> {
    let (target, kind, value) = match what {
        Revoke::Token(token) => target_of_token(tessera, &token).await?,
        Revoke::TokenId(jti) => (Target::TokenId(jti.clone()), "jti", jti),
        Revoke::Session(sid) => {
            let exists = tessera
                .db
                .run(move |conn| sessions::find(conn, sid))
                .await?
                .is_some();
            if !exists {
                return Err(AuthError::NotFound("no such session".to_owned()));
            }
            (Target::Session(sid), "sid", sid.to_string())
        }
    };
    let event = actor
        .event(audit::action::REVOCATION_CREATED)
        .detail("kind", kind)
        .detail("value", value.clone())
        .detail("reason", reason);
    revoke(
        tessera,
        vec![target],
        reason,
        &actor.label(),
        vec![event],
        &actor.ctx,
    )
    .await?;
    Ok((kind, value))
}

async fn target_of_token(
    tessera: &Tessera,
    token: &str,
) -> Result<(Target, &'static str, String), AuthError> {
    if let Ok(refresh) = crate::domain::RefreshToken::parse(token) {
        let hash = refresh.hash();
        let found = tessera
            .db
            .run(move |conn| crate::store::refresh_tokens::state(conn, &hash.0, 0.0))
            .await?
            .ok_or_else(|| AuthError::NotFound("no such refresh token".to_owned()))?;
        return Ok((
            Target::Session(found.session_id),
            "sid",
            found.session_id.to_string(),
        ));
    }
    let keys = tessera.keys.snapshot();
    let claims = super::tokens::verify(&keys, token, &tessera.settings.issuer, None)
        // Well formed or not, no token of this issuer is there to revoke.
        .map_err(|e| AuthError::NotFound(format!("no live access token of this issuer: {e}")))?;
    Ok((
        Target::AccessToken {
            jti: claims.jti.clone(),
            expires_at: claims.exp,
        },
        "jti",
        claims.jti,
    ))
}

/// Recorded revocations, newest first, optionally of one kind; `before` is the id of
/// the last row of the previous page.
#[tracing::instrument(name = "revocation.list", level = "debug", skip_all)]
pub async fn list(
    tessera: &Tessera,
    kind: Option<String>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RevocationRow>, AuthError> {
    Ok(tessera
        .db
        .run(move |conn| revocations::list(conn, kind.as_deref(), before, limit))
        .await?)
}

/// RFC 7009: revokes a token presented by `client`. A refresh token ends its whole
/// session; an access token is denied by `jti`. The hint only decides which kind is
/// tried first. Unknown, expired and already revoked tokens are not errors.
#[tracing::instrument(name = "revocation.revoke_presented", level = "debug", skip_all, fields(client_id = %client.id, ?hint), err(level = "debug"))]
pub async fn revoke_presented(
    tessera: &Tessera,
    client: &super::clients::Client,
    token: &str,
    hint: Option<&str>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let refresh_first = match hint {
        Some("refresh_token") => true,
        Some("access_token") => false,
        _ => crate::domain::RefreshToken::looks_like(token),
    };
    for kind_is_refresh in [refresh_first, !refresh_first] {
        let done = if kind_is_refresh {
            revoke_refresh_token(tessera, client, token, ctx).await?
        } else {
            revoke_access_token(tessera, client, token, ctx).await?
        };
        if done {
            break;
        }
    }
    Ok(())
}

fn not_yours() -> AuthError {
    AuthError::UnauthorizedClient("the token was not issued to this client".to_owned())
}

/// Returns whether the token was recognised as a refresh token.
async fn revoke_refresh_token(
    tessera: &Tessera,
    client: &super::clients::Client,
    token: &str,
    ctx: &RequestContext,
) -> Result<bool, AuthError> {
    let Ok(token) = crate::domain::RefreshToken::parse(token) else {
        return Ok(false);
    };
    let hash = token.hash();
    let Some(found) = tessera
        .db
        .run(move |conn| crate::store::refresh_tokens::state(conn, &hash.0, 0.0))
        .await?
    else {
        return Ok(false);
    };
    if found.client_id != client.id.as_str() {
        return Err(not_yours());
    }
    if found.session_live {
        let event = AuditEvent::new(audit::action::SESSION_REVOKED)
            .user(found.user_id)
            .client(client.id.as_str())
            .session(found.session_id)
            .detail("via", "refresh_token");
        revoke_for_client(
            tessera,
            client,
            Target::Session(found.session_id),
            event,
            ctx,
        )
        .await?;
    }
    Ok(true)
}

async fn revoke_for_client(
    tessera: &Tessera,
    client: &super::clients::Client,
    target: Target,
    event: AuditEvent,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let by = format!("client:{}", client.id);
    revoke(
        tessera,
        vec![target],
        "revoked_by_client",
        &by,
        vec![event],
        ctx,
    )
    .await
}

/// Returns whether the token was recognised as one of our access tokens.
async fn revoke_access_token(
    tessera: &Tessera,
    client: &super::clients::Client,
    token: &str,
    ctx: &RequestContext,
) -> Result<bool, AuthError> {
    let keys = tessera.keys.snapshot();
    let claims = match super::tokens::verify(&keys, token, &tessera.settings.issuer, None) {
        Ok(claims) => claims,
        // Expired: nothing left to revoke. Anything else is not a token of ours.
        Err(_) => return Ok(false),
    };
    if claims.client_id != client.id.as_str() {
        return Err(not_yours());
    }
    let mut event = AuditEvent::new(audit::action::TOKEN_REVOKED)
        .client(client.id.as_str())
        .detail("jti", claims.jti.clone());
    if let Some(user) = super::tokens::user_id(&claims) {
        event = event.user(user);
    }
    let target = Target::AccessToken {
        jti: claims.jti,
        expires_at: claims.exp,
    };
    revoke_for_client(tessera, client, target, event, ctx).await?;
    Ok(true)
}
