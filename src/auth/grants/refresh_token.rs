//! `grant_type=refresh_token`: rotation, the grace window for retries, and reuse
//! detection, which ends the session.
//!
//! A token names its session and a generation (`domain::RefreshToken`); the session row
//! holds the live generation. Presented with generation `g` while the row holds `c`:
//! - `g == c`: the rotation moves the row to `c + 1` and the answer carries that link;
//! - `g == c - 1` within the grace window after that rotation: a retry (a lost answer,
//!   racing tabs), answered with the same successor, recomputed from its generation;
//! - any other `g < c`: a replay of a spent token. Someone else may hold the chain, so
//!   the session ends, and with it every access token minted in it.

use uuid::Uuid;

use super::{count_issued, mint_for_user, Granted};
use crate::auth::audit::{self, action, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::revocation::{self, Target};
use crate::auth::{AuthError, RequestContext, Tessera};
use crate::domain::{Chain, GrantType, RefreshToken, Scope};
use crate::store::refresh::{self, ChainState, Rotation};
use crate::store::StoreError;

/// `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
/// (OAuth 2.0 Security BCP §4.14.2).
#[tracing::instrument(name = "grant.refresh_token", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn refresh(
    tessera: &Tessera,
    client: &Client,
    presented: RefreshToken,
    requested: Option<&Scope>,
    ctx: &RequestContext,
) -> Result<Granted, AuthError> {
    client.may_use_grant(GrantType::RefreshToken)?;
    let mac = tessera.refresh_mac()?;
    // A forged, altered or retired token goes no further than this.
    let chain = mac
        .verify(&presented)
        .ok_or(AuthError::InvalidRefreshToken)?;
    let generation = i64::try_from(chain.generation).map_err(|_| AuthError::InvalidRefreshToken)?;
    let idle_seconds = tessera.settings.tokens.refresh_idle_ttl.as_secs_f64();
    let rotation = Rotation {
        session_id: chain.session_id,
        generation,
        client_id: client.id.as_str(),
        idle_seconds,
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
    };
    let rotated = match tessera.rotation.rotate(&rotation).await {
        Some(rotated) => rotated?,
        None => {
            let (client_id, ctx2) = (client.id.as_str().to_owned(), ctx.clone());
            tessera
                .db
                .run(move |conn| {
                    refresh::rotate(
                        conn,
                        &Rotation {
                            session_id: chain.session_id,
                            generation,
                            client_id: &client_id,
                            idle_seconds,
                            ip: ctx2.ip.as_deref(),
                            user_agent: ctx2.user_agent.as_deref(),
                        },
                    )
                })
                .await?
        }
    };
    let link = match rotated {
        Some(r) => Link {
            user_id: r.user_id,
            username: r.username,
            roles: r.roles,
            scope: r.scope,
            generation: r.generation,
            issued_at: r.issued_at,
        },
        None => explain_failed_rotation(tessera, client, chain, ctx).await?,
    };
    let successor = mac.issue(Chain {
        session_id: chain.session_id,
        generation: u64::try_from(link.generation).map_err(|_| corrupt("generation"))?,
    });

    // The refresh token keeps the session's scope (RFC 6749 §6); the access token may
    // ask for less, and never gets more than the client may have today.
    let session_scope = Scope::parse(&link.scope).map_err(|e| corrupt(&format!("scope: {e}")))?;
    let scope = match requested {
        Some(r) if !r.is_subset(&session_scope) => {
            return Err(AuthError::InvalidScope(format!(
                "scope exceeds the one originally granted: {}",
                r.excess_over(&session_scope).collect::<Vec<_>>().join(" ")
            )))
        }
        Some(r) => r.clone(),
        None => session_scope,
    };
    let scope = Scope::from_tokens(scope.iter().filter(|s| client.scopes.contains(s)))
        .expect("tokens of a parsed scope stay valid");
    let access = mint_for_user(
        tessera,
        client,
        link.user_id,
        &link.username,
        &link.roles,
        chain.session_id,
        &scope,
        Some(link.issued_at),
    )?;
    count_issued(tessera, GrantType::RefreshToken);
    Ok(Granted {
        access,
        refresh_token: Some(successor),
        scope,
        id_token: None,
    })
}

/// The link a refresh answers with, and what its access token carries.
struct Link {
    user_id: Uuid,
    username: String,
    roles: Vec<String>,
    scope: String,
    generation: i64,
    /// The access token's `iat`, from PostgreSQL's clock after the session row lock.
    issued_at: i64,
}

fn corrupt(what: &str) -> AuthError {
    AuthError::Store(StoreError::Corrupt(format!("session {what}")))
}

/// The rotation matched nothing: find out why. The link spent moments ago gets the
/// same successor again; one spent earlier is a replay, and the whole session dies.
async fn explain_failed_rotation(
    tessera: &Tessera,
    client: &Client,
    chain: Chain,
    ctx: &RequestContext,
) -> Result<Link, AuthError> {
    let grace = tessera.settings.tokens.refresh_reuse_grace.as_secs_f64();
    let session_id = chain.session_id;
    // Decided on the row locked against role changes: the answer to a retry is minted
    // from it (see `refresh::state_locked`). The lock is released at once for anything
    // else.
    let found = tessera
        .db
        .run(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| refresh::state_locked(conn, session_id, grace))
        })
        .await?;
    let Some(state) = found else {
        return Err(AuthError::InvalidRefreshToken);
    };
    // Bound to the client it was issued to (RFC 6749 §10.4); telling more would help
    // someone holding a stolen token.
    if state.client_id != client.id.as_str() || !state.live {
        return Err(AuthError::InvalidRefreshToken);
    }
    let presented = i64::try_from(chain.generation).unwrap_or(i64::MAX);
    if presented > state.generation {
        // A genuine link the database has not reached: it was restored from a backup
        // older than the token. Nothing to end; the operator should know.
        tracing::warn!(
            sid = %session_id,
            presented,
            current = state.generation,
            "refresh token from a later generation than the database holds (restored from a backup?)"
        );
        return Err(AuthError::InvalidRefreshToken);
    }
    if presented == state.generation {
        // The live link failed its own rotation: its idle lifetime ran out meanwhile.
        return Err(AuthError::InvalidRefreshToken);
    }
    // Only the link just before the live one, and only within the window: an honest
    // retry never finds its successor already rotated, since whoever lost the first
    // answer cannot have used it.
    if presented == state.generation - 1 && state.within_grace {
        return grace_retry(tessera, client, session_id, state, ctx).await;
    }
    reuse_detected(tessera, client, session_id, &state, ctx).await
}

async fn grace_retry(
    tessera: &Tessera,
    client: &Client,
    session_id: Uuid,
    state: ChainState,
    ctx: &RequestContext,
) -> Result<Link, AuthError> {
    tracing::info!(sid = %session_id, "refresh retried within the grace window");
    // Audited with where it came from: a retry from another address or device than the
    // rotation it repeats is how a token stolen after use shows up.
    let event = AuditEvent::new(action::REFRESH_GRACE_RETRY)
        .user(state.user_id)
        .client(client.id.as_str())
        .session(session_id);
    let ctx2 = ctx.clone();
    tessera
        .db
        .run(move |conn| audit::record(conn, &[event], &ctx2))
        .await?;
    tessera.metrics.refresh_grace_retries.inc();
    Ok(Link {
        user_id: state.user_id,
        username: state.username,
        roles: state.roles,
        scope: state.scope,
        generation: state.generation,
        issued_at: state.read_at,
    })
}

/// Replay of a spent link: end the session, and with it every access token minted in
/// it.
async fn reuse_detected(
    tessera: &Tessera,
    client: &Client,
    session_id: Uuid,
    state: &ChainState,
    ctx: &RequestContext,
) -> Result<Link, AuthError> {
    let event = AuditEvent::new(action::REFRESH_REUSE_DETECTED)
        .user(state.user_id)
        .client(client.id.as_str())
        .session(session_id);
    revocation::revoke(
        tessera,
        vec![Target::Session(session_id)],
        "refresh_token_reuse",
        "system",
        vec![event],
        ctx,
    )
    .await?;
    tessera.metrics.refresh_reuse.inc();
    tracing::warn!(
        sid = %session_id,
        user_id = %state.user_id,
        client_id = %client.id,
        "refresh token reuse detected: session revoked"
    );
    Err(AuthError::RefreshTokenReused)
}
