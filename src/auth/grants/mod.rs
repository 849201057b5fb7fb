//! The grants of the token endpoint, one module each: `password`, `refresh_token`,
//! `client_credentials`. What they share is here: what a grant hands back, and how an
//! access token is minted for a client.

mod authorization_code;
mod client_credentials;
mod password;
mod refresh_token;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use uuid::Uuid;

pub(crate) use authorization_code::{authorization_code, CodeExchange};
pub(crate) use client_credentials::client_credentials;
pub(crate) use password::password;
pub(crate) use refresh_token::refresh;

use super::clients::Client;
use super::tokens::{self, MintedToken, Subject, TokenRequest};
use super::{chrono_duration, AuthError, RequestContext, Tessera};
use crate::domain::{Chain, GrantType, RefreshToken, Scope};
use crate::store::{sessions, signing_keys, users, StoreError};

/// What a successful grant hands back; the handler turns it into RFC 6749 §5.1 JSON.
pub(crate) struct Granted {
    pub access: MintedToken,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Scope,
    /// An OpenID Connect ID token, for a code exchanged with the `openid` scope.
    pub id_token: Option<String>,
}

/// A user's session about to start (the password grant, a code exchange): its id and
/// lifetimes, fixed before the transaction that inserts it.
pub(super) struct SessionStart {
    pub id: Uuid,
    pub user_id: Uuid,
    client_id: String,
    scope: String,
    pub username: String,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    browser_session_id: Option<Uuid>,
    pub ctx: RequestContext,
}

/// What must still hold of the user when the session starts, checked under the user's
/// row lock.
#[derive(Clone, Copy)]
pub(super) enum UserGuard {
    /// The password checked is still the password (a re-hash is not a change).
    PasswordUnchangedSince(DateTime<Utc>),
    /// Signed in on the login page at this time, and the password unchanged since.
    SignedInAt(DateTime<Utc>),
}

/// What a started session's tokens carry: the roles read under the lock, and `iat`.
pub(super) struct Opened {
    roles: Vec<String>,
    issued_at: i64,
}

impl SessionStart {
    pub(super) fn new(
        tessera: &Tessera,
        client: &Client,
        user_id: &Uuid,
        username: &str,
        scope: &Scope,
        browser_session_id: Option<Uuid>,
        ctx: &RequestContext,
    ) -> Self {
        let now = Utc::now();
        let expires_at = now + chrono_duration(tessera.settings.tokens.session_max_ttl);
        Self {
            id: Uuid::now_v7(),
            user_id: *user_id,
            client_id: client.id.as_str().to_owned(),
            scope: scope.to_string(),
            username: username.to_owned(),
            expires_at,
            refresh_expires_at: (now + chrono_duration(tessera.settings.tokens.refresh_idle_ttl))
                .min(expires_at),
            browser_session_id,
            ctx: ctx.clone(),
        }
    }

    /// Inserts the session at generation 0, inside the caller's transaction; `None`
    /// when the guard no longer holds (the user was disabled or changed meanwhile).
    ///
    /// The user's row lock orders this start before or after any change to the user: a
    /// change made first is seen here (its roles go into the token and the session); a
    /// change made after waits for this commit, updates the new session's roles, and
    /// its revocation, timestamped later, catches the token, whose `iat` is read here
    /// from PostgreSQL's clock (the clock a racing change's not-before comes from).
    pub(super) fn open(
        &self,
        conn: &mut PgConnection,
        guard: UserGuard,
    ) -> Result<Option<Opened>, StoreError> {
        let roles = match guard {
            UserGuard::PasswordUnchangedSince(at) => {
                users::unchanged_since_check(conn, self.user_id, at)?
            }
            UserGuard::SignedInAt(at) => users::signed_in_since(conn, self.user_id, at)?,
        };
        let Some(roles) = roles else {
            return Ok(None);
        };
        let issued_at = signing_keys::clock_now(conn)?.timestamp();
        sessions::insert(
            conn,
            &sessions::NewSession {
                id: self.id,
                user_id: self.user_id,
                client_id: &self.client_id,
                scope: &self.scope,
                expires_at: self.expires_at,
                refresh_expires_at: self.refresh_expires_at,
                username: &self.username,
                roles: &roles,
                user_agent: self.ctx.user_agent.as_deref(),
                ip: self.ctx.ip.as_deref(),
            },
        )?;
        if let Some(browser_session_id) = self.browser_session_id {
            sessions::set_browser_session(conn, self.id, browser_session_id)?;
        }
        Ok(Some(Opened { roles, issued_at }))
    }

    /// The access token and the first refresh token of the started session (a refresh
    /// token only for a client that may refresh).
    pub(super) fn grant(
        &self,
        tessera: &Tessera,
        client: &Client,
        opened: Opened,
        scope: Scope,
    ) -> Result<Granted, AuthError> {
        let refresh_token = if client.grant_types.contains(&GrantType::RefreshToken)
            || client.grant_types.contains(&GrantType::Password)
        {
            Some(tessera.refresh_mac()?.issue(Chain {
                session_id: self.id,
                generation: 0,
            }))
        } else {
            None
        };
        let access = mint_for_user(
            tessera,
            client,
            self.user_id,
            &self.username,
            &opened.roles,
            self.id,
            &scope,
            Some(opened.issued_at),
        )?;
        Ok(Granted {
            access,
            refresh_token,
            scope,
            id_token: None,
        })
    }
}

/// A session insert that failed because its client was deleted meanwhile.
pub(super) fn client_gone(e: StoreError) -> AuthError {
    if e.is_foreign_key_violation() {
        AuthError::InvalidClient("client authentication failed".to_owned())
    } else {
        AuthError::Store(e)
    }
}

/// RFC 9068 audience restriction: a token is good for the APIs its client names. A
/// client that names none gets tokens for Tessera's own API (`/v1/me`, logout, admin);
/// a client for other APIs must list Tessera's issuer too for its tokens to work here,
/// so a token handed to a third-party API cannot be replayed against Tessera. (A
/// third-party app's user tokens are narrower still: see [`mint_for_user`].)
pub(super) fn audiences(tessera: &Tessera, client: &Client) -> Vec<String> {
    if client.audiences.is_empty() {
        vec![tessera.settings.own_audience().to_owned()]
    } else {
        client.audiences.clone()
    }
}

pub(super) fn access_ttl(tessera: &Tessera, client: &Client) -> Duration {
    client
        .access_token_ttl
        .unwrap_or(tessera.settings.tokens.access_ttl)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn mint_for_user(
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
    // A third-party app acts for the user only as far as the user allowed it on the
    // consent page: its tokens carry none of the user's roles, and unless the operator
    // named its audiences they are for the app itself (and userinfo), never for
    // Tessera's own API, where they would let the app manage the user's account (or,
    // for an administrator, everyone's).
    let (roles, audiences) = if client.first_party {
        (roles, audiences(tessera, client))
    } else if client.audiences.is_empty() {
        (&[][..], vec![client.id.as_str().to_owned()])
    } else {
        (&[][..], client.audiences.clone())
    };
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
            audiences,
            ttl: access_ttl(tessera, client),
            issued_at,
        },
    )?)
}

/// The `tokens_issued` metric, by grant.
pub(super) fn count_issued(tessera: &Tessera, grant: GrantType) {
    tessera
        .metrics
        .tokens_issued
        .with_label_values(&[grant.as_str()])
        .inc();
}
