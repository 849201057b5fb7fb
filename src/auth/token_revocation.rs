//! RFC 7009 token revocation, asked for by the client a token was issued to. A module
//! of its own beside `revocation`, which it uses: revocation knows nothing of clients.

use super::revocation::{revoke, Target};
use crate::auth::audit::{self, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::tokens;
use crate::auth::{AuthError, RequestContext, Tessera};
use crate::domain::{RefreshToken, TokenType};
use crate::store::refresh_tokens;

/// RFC 7009: revokes a token presented by `client`. A refresh token ends its whole
/// session; an access token is denied by `jti`. The hint only decides which kind is
/// tried first. Unknown, expired and already revoked tokens are not errors.
#[tracing::instrument(name = "token_revocation.revoke_presented", level = "debug", skip_all, fields(client_id = %client.id, ?hint), err(level = "debug"))]
pub(crate) async fn revoke_presented(
    tessera: &Tessera,
    client: &Client,
    token: &str,
    hint: Option<TokenType>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    for kind in TokenType::lookup_order(hint, token) {
        let done = match kind {
            TokenType::RefreshToken => revoke_refresh_token(tessera, client, token, ctx).await?,
            TokenType::AccessToken => revoke_access_token(tessera, client, token, ctx).await?,
        };
        if done {
            break;
        }
    }
    Ok(())
}

fn not_yours() -> AuthError {
    AuthError::UnauthorizedClient("the token was not issued to this client".to_owned())
}

/// Returns whether the token was recognised as a refresh token.
async fn revoke_refresh_token(
    tessera: &Tessera,
    client: &Client,
    token: &str,
    ctx: &RequestContext,
) -> Result<bool, AuthError> {
    let Ok(token) = RefreshToken::parse(token) else {
        return Ok(false);
    };
    let hash = token.hash();
    let Some(found) = tessera
        .db
        .run(move |conn| refresh_tokens::state(conn, &hash.0, 0.0))
        .await?
    else {
        return Ok(false);
    };
    if found.client_id != client.id.as_str() {
        return Err(not_yours());
    }
    if found.session_live {
        let event = AuditEvent::new(audit::action::SESSION_REVOKED)
            .user(found.user_id)
            .client(client.id.as_str())
            .session(found.session_id)
            .detail("via", TokenType::RefreshToken.as_str());
        revoke_for_client(
            tessera,
            client,
            Target::Session(found.session_id),
            event,
            ctx,
        )
        .await?;
    }
    Ok(true)
}

async fn revoke_for_client(
    tessera: &Tessera,
    client: &Client,
    target: Target,
    event: AuditEvent,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let by = format!("client:{}", client.id);
    revoke(
        tessera,
        vec![target],
        "revoked_by_client",
        &by,
        vec![event],
        ctx,
    )
    .await
}

/// Returns whether the token was recognised as one of our access tokens.
async fn revoke_access_token(
    tessera: &Tessera,
    client: &Client,
    token: &str,
    ctx: &RequestContext,
) -> Result<bool, AuthError> {
    let keys = tessera.keys.snapshot();
    let claims = match tokens::verify(&keys, token, &tessera.settings.issuer, None) {
        Ok(claims) => claims,
        // Expired: nothing left to revoke. Anything else is not a token of ours.
        Err(_) => return Ok(false),
    };
    if claims.client_id != client.id.as_str() {
        return Err(not_yours());
    }
    let mut event = AuditEvent::new(audit::action::TOKEN_REVOKED)
        .client(client.id.as_str())
        .detail("jti", claims.jti.clone());
    if let Some(user) = tokens::user_id(&claims) {
        event = event.user(user);
    }
    let target = Target::AccessToken {
        jti: claims.jti,
        expires_at: claims.exp,
    };
    revoke_for_client(tessera, client, target, event, ctx).await?;
    Ok(true)
}
