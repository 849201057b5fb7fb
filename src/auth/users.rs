//! Accounts: creation and password rules shared by the CLI and the API.

use uuid::Uuid;

use super::audit::{self, action, AuditEvent};
use super::passwords::PasswordHasher;
use super::revocation::{self, Target};
use super::{AuthError, RequestContext};
use crate::domain::{NewPassword, Password, Role, Username};
use crate::store::users::{self, NewUser, UserRow};
use crate::store::{sessions, Db};

pub async fn create(
    db: &Db,
    hasher: &PasswordHasher,
    username: Username,
    password: NewPassword,
    roles: Vec<Role>,
) -> Result<UserRow, AuthError> {
    let hash = hasher.hash(password).await?;
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let name = username.clone();
    let result = db
        .run(move |conn| {
            users::insert(
                conn,
                &NewUser {
                    id: Uuid::now_v7(),
                    username: name.as_str(),
                    password_hash: &hash,
                    roles: &roles,
                },
            )
        })
        .await;
    match result {
        Err(e) if e.is_unique_violation() => Err(AuthError::Conflict(format!(
            "a user named `{username}` already exists"
        ))),
        other => Ok(other?),
    }
}

/// Changes a user's password after checking the current one, and ends every other
/// session of the user in the same transaction (the one in use stays).
pub async fn change_password(
    state: &crate::state::AppState,
    user_id: Uuid,
    current_session: Uuid,
    current: Password,
    new: NewPassword,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let user = state
        .db
        .run(move |conn| users::find_by_id(conn, user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or(AuthError::InvalidCredentials)?;
    let matched = state
        .passwords
        .verify(current, Some(user.password_hash.clone()))
        .await?;
    if !matched {
        let event = AuditEvent::new(action::PASSWORD_CHANGE_FAILED)
            .actor(user_id)
            .user(user_id)
            .session(current_session);
        let ctx2 = ctx.clone();
        state
            .db
            .run(move |conn| audit::record(conn, &[event], &ctx2))
            .await?;
        return Err(AuthError::WrongPassword);
    }
    let new_hash = state.passwords.hash(new).await?;
    let event = AuditEvent::new(action::PASSWORD_CHANGED)
        .actor(user_id)
        .user(user_id)
        .session(current_session);
    revocation::revoke_with(
        state,
        move |conn| {
            users::set_password_hash(conn, user_id, &new_hash)?;
            let others = sessions::live_for_user(conn, user_id)?
                .into_iter()
                .filter(|s| s.id != current_session)
                .map(|s| Target::Session(s.id))
                .collect();
            Ok(others)
        },
        "password_changed",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await
}
