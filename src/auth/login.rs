//! A person's name and password, checked: by the password grant and by Tessera's login
//! page alike, with the same brute-force accounting, the same audit events and one
//! answer for an unknown name, a wrong password and a disabled account.

use uuid::Uuid;

use super::audit::{self, action, AuditEvent};
use super::{throttle, AuthError, RequestContext, Tessera};
use crate::domain::{Password, Username};
use crate::store::users::{self, UserRow};

/// Checks `password` for the account named `username` on behalf of `client_id`
/// (throttled, bcrypt off the async workers). A failure is counted, audited and
/// answered [`AuthError::InvalidCredentials`]; a success re-hashes the password in the
/// background when the cost setting changed.
#[tracing::instrument(name = "login.check_password", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn check_password(
    tessera: &Tessera,
    client_id: &str,
    username: &str,
    password: Password,
    ctx: &RequestContext,
) -> Result<UserRow, AuthError> {
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
    match user {
        Some(user) if matched && !user.disabled => {
            throttle::succeeded(tessera, &ticket).await;
            if tessera.passwords.needs_rehash(&user.password_hash) {
                upgrade_hash_in_background(tessera, user.id, user.password_hash.clone(), password);
            }
            Ok(user)
        }
        other => {
            let event = AuditEvent::new(action::LOGIN_FAILED).client(client_id);
            let event = match &other {
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
            let ctx = ctx.clone();
            tessera
                .db
                .run(move |conn| audit::record(conn, &[event], &ctx))
                .await?;
            Err(AuthError::InvalidCredentials)
        }
    }
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
