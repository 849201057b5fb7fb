//! `grant_type=authorization_code` (RFC 6749 §4.1.3): a code from Tessera's login page,
//! exchanged once, by the client it was issued to, with the redirect URI and the PKCE
//! verifier (RFC 7636 §4.5) of the request that got it, for a session and its tokens
//! (and an ID token with the `openid` scope).

use chrono::Utc;
use diesel::Connection;

use super::{count_issued, Granted, SessionStart, UserGuard};
use crate::auth::audit::{self, action, AuditEvent};
use crate::auth::authorize::{code_hash, is_code, is_code_verifier, verifier_matches};
use crate::auth::clients::Client;
use crate::auth::id_token::{self, IdTokenRequest};
use crate::auth::revocation::{self, Target};
use crate::auth::{AuthError, RequestContext, Tessera};
use crate::domain::{GrantType, Scope};
use crate::store::{authorization_codes, StoreError};

/// What a code exchange presents.
pub(crate) struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

enum Outcome {
    Issued(Box<(SessionStart, super::Opened, authorization_codes::CodeRow)>),
    /// A second use: the session the first one started, to revoke.
    Replayed(Option<uuid::Uuid>, uuid::Uuid),
    Refused(&'static str),
}

fn invalid(why: &str) -> AuthError {
    AuthError::InvalidGrant(why.to_owned())
}

#[tracing::instrument(name = "grant.authorization_code", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn authorization_code(
    tessera: &Tessera,
    client: &Client,
    exchange: CodeExchange<'_>,
    ctx: &RequestContext,
) -> Result<Granted, AuthError> {
    client.may_use_grant(GrantType::AuthorizationCode)?;
    if !is_code(exchange.code) {
        return Err(invalid(
            "the authorization code is invalid, expired or already used",
        ));
    }
    if exchange.code_verifier.is_some_and(|v| !is_code_verifier(v)) {
        return Err(AuthError::InvalidRequest(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~".to_owned(),
        ));
    }
    let hash = code_hash(exchange.code);
    let (client_id, redirect_uri, verifier) = (
        client.id.as_str().to_owned(),
        exchange.redirect_uri.map(str::to_owned),
        exchange.code_verifier.map(str::to_owned),
    );
    let client2 = client.clone();
    let tessera2 = tessera.clone();
    let ctx2 = ctx.clone();
    let outcome = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                // Locked: of two exchanges of one code, the second waits and sees it used.
                let Some(row) = authorization_codes::find_for_update(conn, &hash)? else {
                    return Ok::<_, StoreError>(Outcome::Refused("unknown"));
                };
                if row.used_at.is_some() {
                    return Ok(Outcome::Replayed(row.session_id, row.user_id));
                }
                // Every other mismatch is answered alike and leaves the code as it was:
                // whoever holds a stolen code learns nothing, and the rightful client
                // can still use it.
                if row.client_id != client_id {
                    return Ok(Outcome::Refused("another client's code"));
                }
                if row.expires_at <= Utc::now() {
                    return Ok(Outcome::Refused("expired"));
                }
                if redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
                    return Ok(Outcome::Refused("redirect_uri differs"));
                }
                let pkce_ok = match (&row.code_challenge, &verifier) {
                    (Some(challenge), Some(verifier)) => verifier_matches(verifier, challenge),
                    (None, None) => true,
                    // RFC 9700 §2.1.1: a verifier for a code issued without a challenge
                    // is refused, so PKCE cannot be downgraded away.
                    _ => false,
                };
                if !pkce_ok {
                    return Ok(Outcome::Refused("PKCE verifier does not match"));
                }
                let scope = Scope::parse(&row.scope).map_err(StoreError::Corrupt)?;
                let username = crate::store::users::find_by_id(conn, row.user_id)?
                    .map(|u| u.username)
                    .unwrap_or_default();
                let start = SessionStart::new(
                    &tessera2,
                    &client2,
                    &row.user_id,
                    &username,
                    &scope,
                    Some(row.browser_session_id),
                    &ctx2,
                );
                // What the code stands on must still stand, locked so that a sign-out or a
                // withdrawn consent racing this exchange waits for it and then ends what it
                // starts: the browser session, the consent (third-party apps), the
                // redirect URI's registration, and (in `open`) the user, enabled and
                // with the password unchanged since the sign-in.
                if !crate::store::browser_sessions::lock_if_live(conn, row.browser_session_id)? {
                    return Ok(Outcome::Refused("browser session ended"));
                }
                if client2.redirect_uri(&row.redirect_uri).is_none() {
                    return Ok(Outcome::Refused("redirect URI no longer registered"));
                }
                if !client2.first_party {
                    let scopes: Vec<&str> = scope.iter().collect();
                    if !crate::store::consents::lock_if_covers(
                        conn,
                        row.user_id,
                        &client_id,
                        &scopes,
                    )? {
                        return Ok(Outcome::Refused("consent withdrawn"));
                    }
                }
                let Some(opened) = start.open(conn, UserGuard::SignedInAt(row.auth_time))? else {
                    return Ok(Outcome::Refused("user changed"));
                };
                authorization_codes::mark_used(conn, &hash, start.id)?;
                let event = AuditEvent::new(action::AUTHORIZATION_CODE_EXCHANGED)
                    .user(row.user_id)
                    .client(&client_id)
                    .session(start.id);
                audit::record(conn, &[event], &ctx2)?;
                Ok(Outcome::Issued(Box::new((start, opened, row))))
            })
        })
        .await
        .map_err(super::client_gone)?;
    let (start, opened, row) = match outcome {
        Outcome::Issued(issued) => *issued,
        Outcome::Refused(why) => {
            tracing::debug!(why, "authorization code refused");
            return Err(invalid(
                "the authorization code is invalid, expired or already used",
            ));
        }
        Outcome::Replayed(session, user_id) => {
            // RFC 6749 §4.1.2: a code used twice was stolen or leaked; what the first
            // use issued is revoked.
            tracing::warn!(%user_id, client_id = %client.id, "authorization code used twice; revoking what it issued");
            let mut event = AuditEvent::new(action::AUTHORIZATION_CODE_REPLAYED)
                .user(user_id)
                .client(client.id.as_str());
            if let Some(sid) = session {
                event = event.session(sid);
            }
            revocation::revoke(
                tessera,
                session.into_iter().map(Target::Session).collect(),
                "authorization_code_replayed",
                "tessera",
                vec![event],
                ctx,
            )
            .await?;
            return Err(invalid(
                "the authorization code is invalid, expired or already used",
            ));
        }
    };
    let scope = Scope::parse(&row.scope).map_err(|e| AuthError::Store(StoreError::Corrupt(e)))?;
    let mut granted = start.grant(tessera, client, opened, scope.clone())?;
    if scope.contains("openid") {
        let keys = tessera.keys.snapshot();
        granted.id_token = Some(id_token::mint(
            &keys,
            IdTokenRequest {
                issuer: &tessera.settings.issuer,
                user_id: row.user_id,
                client_id: client.id.as_str(),
                browser_session_id: row.browser_session_id,
                auth_time: row.auth_time.timestamp(),
                issued_at: granted.access.claims.iat,
                ttl: super::access_ttl(tessera, client),
                nonce: row.nonce.as_deref(),
                access_token: &granted.access.token,
                username: scope.contains("profile").then_some(start.username.as_str()),
            },
        )?);
    }
    count_issued(tessera, GrantType::AuthorizationCode);
    tracing::info!(user_id = %row.user_id, client_id = %client.id, sid = %start.id, "code exchanged");
    Ok(granted)
}
