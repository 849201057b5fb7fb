//! RFC 7009 token revocation, asked for by the client a token was issued to. A module
//! of its own beside `revocation`, which it uses: revocation knows nothing of clients.

use super::revocation::{revoke, Target};
use crate::auth::audit::{self, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::tokens;
use crate::auth::{refresh_chain, AuthError, RequestContext, Tessera};
use crate::domain::TokenType;

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
    let Some(found) = refresh_chain::find(tessera, token).await? else {
        return Ok(false);
    };
    if found.state.client_id != client.id.as_str() {
        return Err(not_yours());
    }
    // Any genuine link ends its session, the live one or one spent before it, even
    // once its idle lifetime has run out: the session's access tokens may live longer.
    if found.state.open {
        let event = AuditEvent::new(audit::action::SESSION_REVOKED)
            .user(found.state.user_id)
            .client(client.id.as_str())
            .session(found.chain.session_id)
            .detail("via", TokenType::RefreshToken.as_str());
        revoke_for_client(
            tessera,
            client,
            Target::Session(found.chain.session_id),
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
