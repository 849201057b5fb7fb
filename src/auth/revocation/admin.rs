//! An administrator's revocations (admin API), and the record of all of them.

use uuid::Uuid;

use super::{revoke, RevocationRow, Target};
use crate::auth::audit;
use crate::auth::tokens;
use crate::auth::{refresh_chain, Actor, AuthError, Tessera};
use crate::domain::{RefreshToken, RevocationKind};
use crate::store::{revocations, sessions};

/// What an administrator revokes.
pub(crate) enum Revoke {
    /// A presented token: a refresh token ends its session, an access token is denied
    /// by its `jti` until it expires.
    Token(String),
    /// An access token known only by its `jti`.
    TokenId(String),
    /// A session by id.
    Session(Uuid),
}

/// An administrator's revocation (admin API), audited with the reason. Answers the
/// kind and value of what is now denied.
#[tracing::instrument(name = "revocation.revoke_by_admin", level = "debug", skip_all, fields(%reason), err(level = "debug"))]
pub(crate) async fn revoke_by_admin(
    tessera: &Tessera,
    what: Revoke,
    reason: &str,
    actor: &Actor,
) -> Result<(RevocationKind, String), AuthError> {
    let (target, kind, value) = match what {
        Revoke::Token(token) => target_of_token(tessera, &token).await?,
        Revoke::TokenId(jti) => (Target::TokenId(jti.clone()), RevocationKind::Token, jti),
        Revoke::Session(sid) => {
            let exists = tessera
                .db
                .run(move |conn| sessions::find(conn, sid))
                .await?
                .is_some();
            if !exists {
                return Err(AuthError::NotFound("no such session".to_owned()));
            }
            (
                Target::Session(sid),
                RevocationKind::Session,
                sid.to_string(),
            )
        }
    };
    let event = actor
        .event(audit::action::REVOCATION_CREATED)
        .detail("kind", kind.as_str())
        .detail("value", value.clone())
        .detail("reason", reason);
    revoke(
        tessera,
        vec![target],
        reason,
        &actor.label(),
        vec![event],
        &actor.ctx,
    )
    .await?;
    Ok((kind, value))
}

async fn target_of_token(
    tessera: &Tessera,
    token: &str,
) -> Result<(Target, RevocationKind, String), AuthError> {
    if RefreshToken::looks_like(token) {
        let found = refresh_chain::find(tessera, token)
            .await?
            .ok_or_else(|| AuthError::NotFound("no such refresh token".to_owned()))?;
        let session_id = found.chain.session_id;
        return Ok((
            Target::Session(session_id),
            RevocationKind::Session,
            session_id.to_string(),
        ));
    }
    let keys = tessera.keys.snapshot();
    let claims = tokens::verify(&keys, token, &tessera.settings.issuer, None)
        // Well formed or not, no token of this issuer is there to revoke.
        .map_err(|e| AuthError::NotFound(format!("no live access token of this issuer: {e}")))?;
    Ok((
        Target::AccessToken {
            jti: claims.jti.clone(),
            expires_at: claims.exp,
        },
        RevocationKind::Token,
        claims.jti,
    ))
}

/// Recorded revocations, newest first, optionally of one kind; `before` is the id of
/// the last row of the previous page.
#[tracing::instrument(name = "revocation.list", level = "debug", skip_all)]
pub(crate) async fn list(
    tessera: &Tessera,
    kind: Option<RevocationKind>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RevocationRow>, AuthError> {
    Ok(tessera
        .db
        .run(move |conn| revocations::list(conn, kind, before, limit))
        .await?)
}
