//! Tessera's own browser sessions: a person signed in on the login page stays signed
//! in, in that browser, for every app (single sign-on), until the session expires
//! (`TESSERA_LOGIN_SESSION_TTL`), they sign out, or their account is disabled or its
//! password changes.
//!
//! The cookie holds `bs_` and 256 random bits; only their SHA-256 is stored, so a
//! database dump signs no one in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::Connection;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::audit::{self, action, AuditEvent};
use super::clients::Client;
use super::revocation::{self, Target};
use super::{chrono_duration, login, AuthError, RequestContext, Tessera};
use crate::domain::Password;
pub(crate) use crate::store::browser_sessions::LiveBrowserSession;
use crate::store::sessions::{self, Started};
use crate::store::{browser_sessions, signing_keys, users, StoreError};

const PREFIX: &str = "bs_";

fn hash(secret: &str) -> [u8; 32] {
    super::clients::hash_secret(secret)
}

/// A new sign-in: the session, and the secret for its cookie.
pub(crate) struct SignedIn {
    pub session: LiveBrowserSession,
    pub cookie: SecretString,
}

/// Checks the password typed on the login page of `client`'s flow (the same
/// brute-force accounting and answers as the password grant) and starts a session.
///
/// A browser holds one sign-in at a time: the session it was signed in with until now
/// (`replacing`) ends. When the same person signed in again (`prompt=login`,
/// `max_age`), the apps they signed in to carry on under the new session (a later
/// sign-out ends them); when another person takes over the browser, the previous
/// person's apps are signed out with the previous session.
#[tracing::instrument(name = "browser_session.sign_in", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn sign_in(
    tessera: &Tessera,
    client: &Client,
    username: &str,
    password: Password,
    replacing: Option<&LiveBrowserSession>,
    ctx: &RequestContext,
) -> Result<SignedIn, AuthError> {
    let user = login::check_password(tessera, client.id.as_str(), username, password, ctx).await?;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    let secret = SecretString::from(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)));
    let secret_hash = hash(secret.expose_secret());
    let id = Uuid::now_v7();
    let ttl = chrono_duration(tessera.settings.login_page.session_ttl);
    let (user_id, changed_at, username, ctx2) = (
        user.id,
        user.password_changed_at,
        user.username.clone(),
        ctx.clone(),
    );
    let event = AuditEvent::new(action::LOGIN_SUCCEEDED)
        .user(user_id)
        .client(client.id.as_str())
        .detail("via", "login_page")
        .detail("browser_session", id.to_string());
    let previous = replacing.map(|s| (s.id, s.user_id == user_id));
    let carried_over = previous.filter(|(_, same)| *same).map(|(old, _)| old);
    let started = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                // As for the password grant: a reset or a disable that won the race
                // against bcrypt wins.
                if users::unchanged_since_check(conn, user_id, changed_at)?.is_none() {
                    return Ok::<_, StoreError>(None);
                }
                let auth_time = signing_keys::clock_now(conn)?;
                browser_sessions::insert(
                    conn,
                    &browser_sessions::NewBrowserSession {
                        id,
                        secret_hash: &secret_hash,
                        user_id,
                        auth_time,
                        expires_at: auth_time + ttl,
                        ip: ctx2.ip.as_deref(),
                        user_agent: ctx2.user_agent.as_deref(),
                    },
                )?;
                if let Some(old) = carried_over {
                    sessions::move_to_browser_session(conn, old, id)?;
                    browser_sessions::end(conn, old)?;
                }
                audit::record(conn, &[event], &ctx2)?;
                Ok(Some(auth_time))
            })
        })
        .await?;
    let Some(auth_time) = started else {
        return Err(AuthError::InvalidCredentials);
    };
    if let Some((old, false)) = previous {
        sign_out(tessera, old, Some(client.id.as_str()), ctx).await?;
    }
    tracing::info!(%user_id, client_id = %client.id, browser_session = %id, "signed in on the login page");
    Ok(SignedIn {
        session: LiveBrowserSession {
            id,
            user_id,
            auth_time,
            username,
        },
        cookie: secret,
    })
}

/// The live session a browser's cookie names, if any.
#[tracing::instrument(
    name = "browser_session.find",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn find(
    tessera: &Tessera,
    cookie: Option<&str>,
) -> Result<Option<LiveBrowserSession>, AuthError> {
    let Some(cookie) = cookie.filter(|c| c.starts_with(PREFIX) && c.len() == PREFIX.len() + 43)
    else {
        return Ok(None);
    };
    let secret_hash = hash(cookie);
    Ok(tessera
        .db
        .run(move |conn| browser_sessions::find_live(conn, &secret_hash))
        .await?)
}

/// Ends a browser session and every token session started from it: their refresh
/// tokens stop working and their access tokens are denied at once.
#[tracing::instrument(name = "browser_session.sign_out", level = "debug", skip_all, fields(%id), err(level = "debug"))]
pub(crate) async fn sign_out(
    tessera: &Tessera,
    id: Uuid,
    client_id: Option<&str>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let user_id = tessera
        .db
        .run(move |conn| browser_sessions::owner(conn, id))
        .await?;
    let Some(user_id) = user_id else {
        return Ok(());
    };
    let mut event = AuditEvent::new(action::LOGOUT)
        .user(user_id)
        .detail("via", "login_page")
        .detail("browser_session", id.to_string());
    if let Some(client_id) = client_id {
        event = event.client(client_id);
    }
    revocation::revoke_with(
        tessera,
        move |conn| {
            browser_sessions::end(conn, id)?;
            let ended = sessions::live_ids_locked(conn, Started::InBrowserSession(id))?;
            Ok(((), ended.into_iter().map(Target::Session).collect()))
        },
        "logout",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await
}
