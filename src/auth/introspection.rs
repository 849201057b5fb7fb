//! RFC 7662 token introspection: is this token good right now, and what is it?
//!
//! Only for the clients entitled to know (RFC 7662 §4): a client learns about an access
//! token issued to it, or meant for it (its `aud` names one of the client's audiences,
//! Tessera's own excepted, or its client id), and about refresh tokens issued to it.
//! A client an administrator gave `introspect_any` learns about every token. Any other
//! token answers `{"active": false}`, like an unknown one. Introspection only reads: a
//! refresh token is never spent by it, nor counted as reused.

use serde::Serialize;

use super::clients::Client;
use super::revocation::{self, CheckError};
use super::tokens::{self, Audience};
use super::AuthError;
use super::{refresh_chain, Tessera};
use crate::domain::TokenType;

/// The members of an `active: true` answer (RFC 7662 §2.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ActiveToken {
    pub sub: String,
    pub scope: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AudienceSchema>)]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

// The OpenAPI schema of `Audience`, which lives in `tessera_token` and knows nothing of
// OpenAPI; the doc comment below is its description.
/// `aud`: one string, or several (RFC 7519 §4.1.3).
#[derive(utoipa::ToSchema)]
#[schema(as = Audience)]
#[serde(untagged)]
#[allow(dead_code)]
enum AudienceSchema {
    One(String),
    Many(Vec<String>),
}

/// `Ok(None)` is `{"active": false}`: expired, revoked, spent, malformed or foreign.
#[tracing::instrument(name = "introspection.introspect", level = "debug", skip_all, fields(client_id = %client.id, ?hint), err(level = "debug"))]
pub(crate) async fn introspect(
    tessera: &Tessera,
    client: &Client,
    token: &str,
    hint: Option<TokenType>,
) -> Result<Option<ActiveToken>, AuthError> {
    if !client.confidential {
        return Err(AuthError::InvalidClient(
            "introspection is for authenticated confidential clients".to_owned(),
        ));
    }
    for kind in TokenType::lookup_order(hint, token) {
        let found = match kind {
            TokenType::RefreshToken => refresh_token(tessera, client, token).await?,
            TokenType::AccessToken => access_token(tessera, client, token).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Whether `client` may learn about an access token with these claims.
fn may_see_access_token(tessera: &Tessera, client: &Client, claims: &tokens::AccessClaims) -> bool {
    let own = tessera.settings.own_audience();
    client.introspect_any
        || claims.client_id == client.id.as_str()
        || claims.aud.contains(client.id.as_str())
        || client
            .audiences
            .iter()
            .any(|aud| aud != own && claims.aud.contains(aud))
}

async fn access_token(
    tessera: &Tessera,
    client: &Client,
    token: &str,
) -> Result<Option<ActiveToken>, AuthError> {
    let keys = tessera.keys.snapshot();
    let Ok(claims) = tokens::verify(&keys, token, &tessera.settings.issuer, None) else {
        return Ok(None);
    };
    if !may_see_access_token(tessera, client, &claims) {
        return Ok(None);
    }
    match revocation::ensure_not_revoked(tessera, &claims).await {
        Ok(()) => {}
        Err(CheckError::Revoked) => return Ok(None),
        // Fail closed: never say "active" without having checked the denylist.
        Err(e @ CheckError::Unavailable(_)) => return Err(AuthError::Unavailable(e.to_string())),
    }
    Ok(Some(ActiveToken {
        sub: claims.sub,
        scope: claims.scope,
        client_id: claims.client_id,
        username: claims.preferred_username,
        token_type: "Bearer",
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        iss: claims.iss,
        aud: Some(claims.aud),
        jti: Some(claims.jti),
        sid: claims.sid,
        roles: claims.roles,
    }))
}

async fn refresh_token(
    tessera: &Tessera,
    client: &Client,
    token: &str,
) -> Result<Option<ActiveToken>, AuthError> {
    let Some(found) = refresh_chain::find(tessera, token).await? else {
        return Ok(None);
    };
    // A refresh token is a secret between Tessera and its client: no one else may use
    // introspection to probe one (say, a stolen one, without tripping reuse detection).
    if !client.introspect_any && found.state.client_id != client.id.as_str() {
        return Ok(None);
    }
    if !found.is_live() {
        return Ok(None);
    }
    let t = found.state;
    Ok(Some(ActiveToken {
        sub: t.user_id.to_string(),
        scope: t.scope,
        client_id: t.client_id,
        username: Some(t.username),
        token_type: TokenType::RefreshToken.as_str(),
        exp: t.refresh_expires_at.timestamp(),
        iat: t.issued_at.timestamp(),
        nbf: None,
        iss: tessera.settings.issuer.clone(),
        aud: None,
        jti: None,
        sid: Some(found.chain.session_id.to_string()),
        roles: None,
    }))
}
