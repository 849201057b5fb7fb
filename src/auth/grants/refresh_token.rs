//! `grant_type=refresh_token`: rotation, the grace window for retries, and reuse
//! detection, which ends the session.

use chrono::Utc;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{count_issued, mint_for_user, Granted};
use crate::auth::audit::{self, action, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::revocation::{self, Target};
use crate::auth::sealing::SealingKey;
use crate::auth::{AuthError, RequestContext, Tessera};
use crate::domain::{GrantType, RefreshToken, Scope};
use crate::store::{refresh_tokens, users};

/// HKDF purpose for the key that seals a successor refresh token.
const SUCCESSOR_PURPOSE: &[u8] = b"refresh-token-successor/v1";

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
    let hash = presented.hash();
    let successor = RefreshToken::generate();
    let successor_hash = successor.hash();
    let sealed = SealingKey::derive(presented.expose().as_bytes(), SUCCESSOR_PURPOSE)
        .seal(successor.expose().as_bytes(), &hash.0);
    let idle_seconds = tessera.settings.tokens.refresh_idle_ttl.as_secs_f64();
    let (client_id, ctx2) = (client.id.as_str().to_owned(), ctx.clone());
    let rotated = tessera
        .db
        .run(move |conn| {
            refresh_tokens::rotate(
                conn,
                &refresh_tokens::Rotation {
                    token_hash: &hash.0,
                    successor_hash: &successor_hash.0,
                    successor_sealed: &sealed,
                    idle_seconds,
                    client_id: &client_id,
                    ip: ctx2.ip.as_deref(),
                    user_agent: ctx2.user_agent.as_deref(),
                },
            )
        })
        .await?;

    // Roles and `iat` are read under the user row lock, from PostgreSQL's clock, on both
    // paths (see `refresh_tokens::rotate`): a role change racing this refresh never
    // leaves a token with the old roles that its revocation does not catch.
    let (session_id, user_id, username, roles, session_scope, refresh_token, issued_at) =
        match rotated {
            Some(r) => (
                r.session_id,
                r.user_id,
                r.username,
                r.roles,
                r.scope,
                successor,
                r.issued_at,
            ),
            None => {
                let retry = explain_failed_rotation(tessera, client, &presented, ctx).await?;
                (
                    retry.session_id,
                    retry.user_id,
                    retry.username,
                    retry.roles,
                    retry.scope,
                    retry.successor,
                    retry.issued_at,
                )
            }
        };

    // The refresh token keeps the session's scope (RFC 6749 §6); the access token may
    // ask for less, and never gets more than the client may have today.
    let session_scope = Scope::parse(&session_scope).map_err(|e| {
        AuthError::Store(crate::store::StoreError::Corrupt(format!(
            "session scope: {e}"
        )))
    })?;
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
        user_id,
        &username,
        &roles,
        session_id,
        &scope,
        Some(issued_at),
    )?;
    count_issued(tessera, GrantType::RefreshToken);
    Ok(Granted {
        access,
        refresh_token: Some(refresh_token),
        scope,
    })
}

/// A retry within the grace window, answered with the successor already issued.
struct GraceRetry {
    session_id: Uuid,
    user_id: Uuid,
    username: String,
    roles: Vec<String>,
    scope: String,
    successor: RefreshToken,
    issued_at: i64,
}

/// The rotation matched nothing: find out why. A token spent moments ago gets the same
/// successor again; one spent earlier is a replay, and the whole session dies.
async fn explain_failed_rotation(
    tessera: &Tessera,
    client: &Client,
    presented: &RefreshToken,
    ctx: &RequestContext,
) -> Result<GraceRetry, AuthError> {
    let hash = presented.hash();
    let grace = tessera.settings.tokens.refresh_reuse_grace.as_secs_f64();
    let found = tessera
        .db
        .run(move |conn| refresh_tokens::state(conn, &hash.0, grace))
        .await?;
    let Some(token) = found else {
        return Err(AuthError::InvalidRefreshToken);
    };
    // Bound to the client it was issued to (RFC 6749 §10.4); telling more would help
    // someone holding a stolen token.
    if token.client_id != client.id.as_str() {
        return Err(AuthError::InvalidRefreshToken);
    }
    if !token.session_live || token.user_disabled {
        return Err(AuthError::InvalidRefreshToken);
    }
    if token.used_at.is_none() {
        // Not spent, so it failed on its own expiry.
        return Err(AuthError::InvalidRefreshToken);
    }
    // An honest retry never finds its successor already rotated: whoever lost the first
    // answer cannot have used it. So a spent successor makes this a replay, grace or not.
    if token.within_grace && !token.successor_spent {
        let successor = token
            .successor_sealed
            .as_deref()
            .and_then(|sealed| {
                SealingKey::derive(presented.expose().as_bytes(), SUCCESSOR_PURPOSE)
                    .open(sealed, &hash.0)
                    .ok()
            })
            .and_then(|plain| {
                std::str::from_utf8(plain.expose_secret())
                    .ok()
                    .and_then(|s| RefreshToken::parse(s).ok())
            });
        let successor_alive = token.successor_expires_at.is_some_and(|at| at > Utc::now());
        if let (Some(successor), true) = (successor, successor_alive) {
            // The roles as of now, under the user row lock (they may have changed since
            // the rotation this retry repeats).
            let user_id = token.user_id;
            let Some((roles, issued_at)) = tessera
                .db
                .run(move |conn| users::roles_and_clock(conn, user_id))
                .await?
            else {
                return Err(AuthError::InvalidRefreshToken);
            };
            tracing::info!(sid = %token.session_id, "refresh retried within the grace window");
            // Audited with where it came from: a retry from another address or device
            // than the rotation it repeats is how a token stolen after use shows up.
            let event = AuditEvent::new(action::REFRESH_GRACE_RETRY)
                .user(token.user_id)
                .client(client.id.as_str())
                .session(token.session_id);
            let ctx2 = ctx.clone();
            tessera
                .db
                .run(move |conn| audit::record(conn, &[event], &ctx2))
                .await?;
            tessera.metrics.refresh_grace_retries.inc();
            return Ok(GraceRetry {
                session_id: token.session_id,
                user_id: token.user_id,
                username: token.username,
                roles,
                scope: token.scope,
                successor,
                issued_at,
            });
        }
    }
    // Replay of a spent token: someone else may hold the chain. End the session, and
    // with it every access token minted in it.
    let session_id = token.session_id;
    let event = AuditEvent::new(action::REFRESH_REUSE_DETECTED)
        .user(token.user_id)
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
        user_id = %token.user_id,
        client_id = %client.id,
        "refresh token reuse detected: session revoked"
    );
    Err(AuthError::RefreshTokenReused)
}
