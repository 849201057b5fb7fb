//! `grant_type=password`: a user's password checked (throttled, bcrypt off the async
//! workers) and a session started.

use diesel::Connection;

use super::{count_issued, Granted, SessionStart, UserGuard};
use crate::auth::audit::{self, action, AuditEvent};
use crate::auth::clients::Client;
use crate::auth::{login, AuthError, RequestContext, Tessera};
use crate::domain::{GrantType, Password, Scope};

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
    let user = login::check_password(tessera, client.id.as_str(), username, password, ctx).await?;
    let start = SessionStart::new(tessera, client, &user.id, &user.username, &scope, None, ctx);
    let event = AuditEvent::new(action::LOGIN_SUCCEEDED)
        .user(user.id)
        .client(client.id.as_str())
        .session(start.id);
    // The password was checked against a hash read before bcrypt ran; if an admin reset
    // it or disabled the account meanwhile, that change wins.
    let guard = UserGuard::PasswordUnchangedSince(user.password_changed_at);
    let (start, opened) = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                let Some(opened) = start.open(conn, guard)? else {
                    return Ok::<_, crate::store::StoreError>((start, None));
                };
                audit::record(conn, &[event], &start.ctx)?;
                Ok((start, Some(opened)))
            })
        })
        .await
        .map_err(super::client_gone)?;
    let Some(opened) = opened else {
        return Err(AuthError::InvalidCredentials);
    };
    let granted = start.grant(tessera, client, opened, scope)?;
    count_issued(tessera, GrantType::Password);
    tracing::info!(user_id = %start.user_id, client_id = %client.id, sid = %start.id, "login");
    Ok(granted)
}
