//! `grant_type=password`: a user's password checked (throttled, bcrypt off the async
//! workers) and a session started.

use chrono::Utc;
use diesel::Connection;
use uuid::Uuid;

use super::{count_issued, mint_for_user, Granted};
use crate::auth::audit::{self, action, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::{chrono_duration, throttle, AuthError, RequestContext, Tessera};
use crate::domain::{Chain, GrantType, Password, Scope, Username};
use crate::store::{sessions, signing_keys, users};

/// `grant_type=password` (RFC 6749 §4.3): checks the password and starts a session.
#[tracing::instrument(name = "grant.password", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn password(
    tessera: &Tessera,
    client: &Client,
    username: &str,
    password: Password,
    requested: Option<&Scope>,
    ctx: &RequestContext,
) -> Result<Granted, AuthError> {
    client.may_use_grant(GrantType::Password)?;
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

    let session_id = Uuid::now_v7();
    let refresh = tessera.refresh_mac()?.issue(Chain {
        session_id,
        generation: 0,
    });
    let now = Utc::now();
    let session_expires = now + chrono_duration(tessera.settings.tokens.session_max_ttl);
    let refresh_expires =
        (now + chrono_duration(tessera.settings.tokens.refresh_idle_ttl)).min(session_expires);
    let (scope_text, client_id, username, ctx2) = (
        scope.to_string(),
        client.id.as_str().to_owned(),
        user.username.clone(),
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
                // change made first is seen here (its roles go into the token and the
                // session); a change made after waits for this commit, updates the new
                // session's roles, and its revocation, timestamped later, catches the
                // token, whose `iat` is fixed before the commit.
                let Some(roles) = users::unchanged_since_check(conn, user_id, password_changed_at)?
                else {
                    return Ok::<_, crate::store::StoreError>(None);
                };
                // PostgreSQL's clock, read under the lock, as a rotation reads it: a
                // racing role change's not-before comes from the same clock.
                let issued_at = signing_keys::clock_now(conn)?.timestamp();
                sessions::insert(
                    conn,
                    &sessions::NewSession {
                        id: session_id,
                        user_id,
                        client_id: &client_id,
                        scope: &scope_text,
                        expires_at: session_expires,
                        refresh_expires_at: refresh_expires,
                        username: &username,
                        roles: &roles,
                        user_agent: ctx2.user_agent.as_deref(),
                        ip: ctx2.ip.as_deref(),
                    },
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
    count_issued(tessera, GrantType::Password);
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
