//! The grants of the token endpoint: `password`, `refresh_token`, `client_credentials`.

use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use uuid::Uuid;

use diesel::Connection;

use super::audit::{self, action, AuditEvent};
use super::clients::Client;
use super::revocation::{self, Target};
use super::sealing::SealingKey;
use super::throttle;
use super::tokens::{self, MintedToken, Subject, TokenRequest};
use super::Tessera;
use super::{chrono_duration, AuthError, RequestContext};
use crate::domain::{Password, RefreshToken, Scope, Username};
use crate::store::{refresh_tokens, sessions, users};

/// What a successful grant hands back; the handler turns it into RFC 6749 §5.1 JSON.
pub struct Granted {
    pub access: MintedToken,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Scope,
}

/// HKDF purpose for the key that seals a successor refresh token.
const SUCCESSOR_PURPOSE: &[u8] = b"refresh-token-successor/v1";

/// RFC 9068 audience restriction: a token is good for the APIs its client names. A
/// client that names none gets tokens for Tessera's own API (`/v1/me`, logout, admin);
/// a client for other APIs must list Tessera's issuer too for its tokens to work here,
/// so a token handed to a third-party API cannot be replayed against Tessera.
fn audiences(tessera: &Tessera, client: &Client) -> Vec<String> {
    if client.audiences.is_empty() {
        vec![tessera.settings.own_audience().to_owned()]
    } else {
        client.audiences.clone()
    }
}

fn access_ttl(tessera: &Tessera, client: &Client) -> Duration {
    client
        .access_token_ttl
        .unwrap_or(tessera.settings.tokens.access_ttl)
}

#[allow(clippy::too_many_arguments)]
fn mint_for_user(
    tessera: &Tessera,
    client: &Client,
    user_id: Uuid,
    username: &str,
    roles: &[String],
    session_id: Uuid,
    scope: &Scope,
    issued_at: Option<i64>,
) -> Result<MintedToken, AuthError> {
    let keys = tessera.keys.snapshot();
    Ok(tokens::mint(
        &keys,
        TokenRequest {
            issuer: &tessera.settings.issuer,
            subject: Subject::User {
                id: user_id,
                username,
                roles,
                session_id,
            },
            client_id: client.id.as_str(),
            scope: &scope.to_string(),
            audiences: audiences(tessera, client),
            ttl: access_ttl(tessera, client),
            issued_at,
        },
    )?)
}

/// `grant_type=password` (RFC 6749 §4.3): checks the password and starts a session.
#[tracing::instrument(name = "grant.password", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub async fn password(
    tessera: &Tessera,
    client: &Client,
    username: &str,
    password: Password,
    requested: Option<&Scope>,
    ctx: &RequestContext,
) -> Result<Granted, AuthError> {
    client.may_use_grant("password")?;
    let scope = client.grant_scope(requested)?;
    let account = throttle::account_key(username);
    let ticket = throttle::check(tessera, &account, ctx).await?;
    // A name that cannot exist still costs a bcrypt verify, like a wrong password.
    let user = match Username::parse(username) {
        Ok(name) => {
            tessera
                .db
                .run(move |conn| users::find_by_username(conn, name.as_str()))
                .await?
        }
        Err(_) => None,
    };
    let matched = tessera
        .passwords
        .verify(
            password.clone(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    let user = match user {
        Some(user) if matched && !user.disabled => user,
        other => {
            let mut event = AuditEvent::new(action::LOGIN_FAILED).client(client.id.as_str());
            event = match &other {
                Some(u) => event.user(u.id).detail(
                    "reason",
                    if u.disabled {
                        "disabled"
                    } else {
                        "wrong_password"
                    },
                ),
                None => event.detail("reason", "unknown_user"),
            };
            // The typed name is kept out of the log for unknown accounts: people paste
            // their password into the username field.
            tessera.metrics.login_failures.inc();
            throttle::failed(tessera, &ticket, other.as_ref().map(|u| u.id), ctx).await?;
            let ctx2 = ctx.clone();
            tessera
                .db
                .run(move |conn| audit::record(conn, &[event], &ctx2))
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
    };
    throttle::succeeded(tessera, &ticket).await;
    if tessera.passwords.needs_rehash(&user.password_hash) {
        upgrade_hash_in_background(tessera, user.id, user.password_hash.clone(), password);
    }

    let refresh = RefreshToken::generate();
    let session_id = Uuid::now_v7();
    let now = Utc::now();
    let session_expires = now + chrono_duration(tessera.settings.tokens.session_max_ttl);
    let token_expires =
        (now + chrono_duration(tessera.settings.tokens.refresh_idle_ttl)).min(session_expires);
    let (hash, scope_text, client_id, ctx2) = (
        refresh.hash(),
        scope.to_string(),
        client.id.as_str().to_owned(),
        ctx.clone(),
    );
    let user_id = user.id;
    let event = AuditEvent::new(action::LOGIN_SUCCEEDED)
        .user(user_id)
        .client(&client_id)
        .session(session_id);
    let password_changed_at = user.password_changed_at;
    let started = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                // The password was checked against a hash read before bcrypt ran; if an
                // admin reset it or disabled the account meanwhile, that change wins. The
                // row lock orders this login before or after any change to the user: a
                // change made first is seen here (its roles go into the token); a change
                // made after waits for this commit, and its revocation, timestamped
                // later, catches the token, whose `iat` is fixed before the commit.
                let Some(roles) = users::unchanged_since_check(conn, user_id, password_changed_at)?
                else {
                    return Ok::<_, crate::store::StoreError>(None);
                };
                let issued_at = tokens::now_unix();
                sessions::insert_with_refresh_token(
                    conn,
                    &sessions::NewSession {
                        id: session_id,
                        user_id,
                        client_id: &client_id,
                        scope: &scope_text,
                        expires_at: session_expires,
                        user_agent: ctx2.user_agent.as_deref(),
                        ip: ctx2.ip.as_deref(),
                    },
                    &hash.0,
                    token_expires,
                )?;
                audit::record(conn, &[event], &ctx2)?;
                Ok(Some((roles, issued_at)))
            })
        })
        .await
        .map_err(|e| match e {
            // The client was deleted while this login was in flight.
            e if e.is_foreign_key_violation() => {
                AuthError::InvalidClient("client authentication failed".to_owned())
            }
            e => AuthError::Store(e),
        })?;
    let Some((roles, issued_at)) = started else {
        return Err(AuthError::InvalidCredentials);
    };
    let access = mint_for_user(
        tessera,
        client,
        user.id,
        &user.username,
        &roles,
        session_id,
        &scope,
        Some(issued_at),
    )?;
    tessera
        .metrics
        .tokens_issued
        .with_label_values(&["password"])
        .inc();
    tracing::info!(user_id = %user.id, client_id = %client.id, sid = %session_id, "login");
    Ok(Granted {
        access,
        refresh_token: Some(refresh),
        scope,
    })
}

/// Re-hashes a password with the configured cost after a successful login, without
/// making the login wait for a second bcrypt run.
fn upgrade_hash_in_background(
    tessera: &Tessera,
    user_id: Uuid,
    old_hash: String,
    password: Password,
) {
    let (db, hasher) = (tessera.db.clone(), tessera.passwords.clone());
    tokio::spawn(async move {
        let Ok(new) = crate::domain::NewPassword::parse(password.expose().to_owned(), 1) else {
            return;
        };
        match hasher.hash(new).await {
            Ok(new_hash) => {
                let stored = db
                    .run(move |conn| {
                        users::upgrade_password_hash(conn, user_id, &old_hash, &new_hash)
                    })
                    .await;
                match stored {
                    Ok(true) => {
                        tracing::info!(%user_id, cost = hasher.cost(), "upgraded password hash")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(%user_id, error = %e, "could not store upgraded password hash")
                    }
                }
            }
            Err(e) => tracing::warn!(%user_id, error = %e, "could not re-hash password"),
        }
    });
}

/// `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
/// (OAuth 2.0 Security BCP §4.14.2).
#[tracing::instrument(name = "grant.refresh_token", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub async fn refresh(
    tessera: &Tessera,
    client: &Client,
    presented: RefreshToken,
    requested: Option<&Scope>,
    ctx: &RequestContext,
) -> Result<Granted, AuthError> {
    client.may_use_grant("refresh_token")?;
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
    tessera
        .metrics
        .tokens_issued
        .with_label_values(&["refresh_token"])
        .inc();
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

/// `grant_type=client_credentials` (RFC 6749 §4.4): a token for the client itself.
#[tracing::instrument(name = "grant.client_credentials", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub fn client_credentials(
    tessera: &Tessera,
    client: &Client,
    requested: Option<&Scope>,
) -> Result<Granted, AuthError> {
    client.may_use_grant("client_credentials")?;
    if !client.confidential {
        return Err(AuthError::UnauthorizedClient(
            "only confidential clients may use the client_credentials grant".to_owned(),
        ));
    }
    let scope = client.grant_scope(requested)?;
    let audiences = audiences(tessera, client);
    let keys = tessera.keys.snapshot();
    let access = tokens::mint(
        &keys,
        TokenRequest {
            issuer: &tessera.settings.issuer,
            subject: Subject::Client,
            client_id: client.id.as_str(),
            scope: &scope.to_string(),
            audiences,
            ttl: access_ttl(tessera, client),
            issued_at: None,
        },
    )?;
    tessera
        .metrics
        .tokens_issued
        .with_label_values(&["client_credentials"])
        .inc();
    Ok(Granted {
        access,
        refresh_token: None,
        scope,
    })
}
