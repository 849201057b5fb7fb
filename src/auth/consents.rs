//! Consents a user gave third-party clients on the consent page: listed and withdrawn
//! at `/v1/me/consents`.

use super::audit::{action, AuditEvent};
use super::revocation::{self, Target};
use super::{AuthError, RequestContext, Tessera};
use crate::store::consents;
pub(crate) use crate::store::consents::ConsentRow;
use crate::store::sessions::{self, Started};

#[tracing::instrument(
    name = "consents.list",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn list(
    tessera: &Tessera,
    user_id: uuid::Uuid,
) -> Result<Vec<ConsentRow>, AuthError> {
    Ok(tessera
        .db
        .run(move |conn| consents::list(conn, user_id))
        .await?)
}

/// Withdraws a consent, and ends the user's sessions with that client (their refresh
/// tokens stop working and their access tokens are denied at once): an app the user no
/// longer allows keeps nothing it was given.
#[tracing::instrument(name = "consents.revoke", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn revoke(
    tessera: &Tessera,
    user_id: uuid::Uuid,
    client_id: &str,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let id = client_id.to_owned();
    let event = AuditEvent::new(action::CONSENT_REVOKED)
        .user(user_id)
        .client(client_id);
    revocation::revoke_with(
        tessera,
        move |conn| {
            if !consents::delete(conn, user_id, &id)? {
                return Err(AuthError::NotFound(
                    "you have not given this client consent".to_owned(),
                ));
            }
            let ended = sessions::live_ids_locked(conn, Started::ByUserWithClient(user_id, &id))?;
            Ok(((), ended.into_iter().map(Target::Session).collect()))
        },
        "consent_revoked",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await
}
