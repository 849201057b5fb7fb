//! Recording: revocations (and what they end) in one PostgreSQL transaction, then
//! pushed to Redis.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use uuid::Uuid;

use super::sync::entry_of;
use super::Target;
use crate::auth::audit::{self, AuditEvent};
use crate::auth::tokens::LEEWAY;
use crate::auth::CLIENT_CACHE_TTL;
use crate::auth::{chrono_duration, AuthError, RequestContext, Tessera};
use crate::domain::{RevocationKind, MAX_ACCESS_TOKEN_TTL};
use crate::store::denylist::DenyEntry;
use crate::store::revocations::{self, NewRevocation, RevocationRow};
use crate::store::{sessions, signing_keys, StoreError};

/// Records the revocations (and what they end) in one transaction, then pushes them
/// to Redis. Succeeds once PostgreSQL has them, even if Redis is down.
#[tracing::instrument(name = "revocation.revoke", level = "debug", skip_all, fields(%reason, targets = targets.len()), err(level = "debug"))]
pub(crate) async fn revoke(
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
pub(crate) async fn revoke_with<T, F>(
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
            .with_label_values(&[row.kind.as_str()])
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
    let row = |kind: RevocationKind, value: String, not_before, expires_at| RevocationRow {
        id: Uuid::now_v7(),
        kind,
        value,
        not_before,
        reason: reason.to_owned(),
        revoked_by: revoked_by.to_owned(),
        created_at: now,
        expires_at,
        synced_at: None,
        // Set below, once the rows are known to be worth a generation.
        generation: 0,
    };
    let mut rows = Vec::with_capacity(targets.len());
    for target in targets {
        match target {
            Target::AccessToken { jti, expires_at } => {
                let until =
                    DateTime::from_timestamp(*expires_at, 0).unwrap_or(now) + chrono_leeway();
                if until > now {
                    rows.push(row(RevocationKind::Token, jti.clone(), None, until));
                }
            }
            Target::TokenId(jti) => {
                rows.push(row(RevocationKind::Token, jti.clone(), None, horizon));
            }
            Target::Session(sid) => {
                sessions::revoke(conn, *sid, reason)?;
                rows.push(row(RevocationKind::Session, sid.to_string(), None, horizon));
            }
            Target::User(user_id) => {
                // Each session by id too: a token minted in one of them after `now`
                // (a refresh racing this revocation) is still caught.
                for sid in sessions::revoke_for_user(conn, *user_id, None, reason)? {
                    rows.push(row(RevocationKind::Session, sid.to_string(), None, horizon));
                }
                rows.push(row(
                    RevocationKind::User,
                    user_id.to_string(),
                    Some(now),
                    horizon,
                ));
            }
            Target::UserTokens(user_id) => {
                rows.push(row(
                    RevocationKind::User,
                    user_id.to_string(),
                    Some(now),
                    horizon,
                ));
            }
            Target::Client(client_id) => {
                // Other instances may go on minting for this client until their cached
                // record expires: deny those tokens too.
                let not_before = now + chrono_duration(CLIENT_CACHE_TTL) + chrono_leeway();
                rows.push(row(
                    RevocationKind::Client,
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
    for row in &mut rows {
        row.generation = generation;
    }
    let inserts: Vec<NewRevocation<'_>> = rows
        .iter()
        .map(|r| NewRevocation {
            id: r.id,
            kind: r.kind,
            value: &r.value,
            not_before: r.not_before,
            reason,
            revoked_by,
            expires_at: r.expires_at,
            generation,
        })
        .collect();
    revocations::insert(conn, inserts)?;
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
