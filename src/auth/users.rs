//! Accounts: creation and password rules shared by the CLI and the API.

use diesel::Connection;
use uuid::Uuid;

use super::audit::{self, action, AuditEvent};
use super::recent::RecentReads;
use super::revocation::{self, Target};
use super::throttle;
use super::Tessera;
use super::{Actor, AuthError, RequestContext};
use crate::domain::{NewPassword, Password, Role, Username};
pub(crate) use crate::store::users::UserRow;
use crate::store::users::{self, NewUser};
use crate::store::{sessions, Db};

#[tracing::instrument(name = "users.create", level = "debug", skip_all, err(level = "debug"))]
pub async fn create(
    tessera: &Tessera,
    username: Username,
    password: NewPassword,
    roles: Vec<Role>,
    actor: &Actor,
) -> Result<UserRow, AuthError> {
    let hash = tessera.passwords.hash(password).await?;
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let name = username.clone();
    let id = Uuid::now_v7();
    let event = actor
        .event(action::USER_CREATED)
        .user(id)
        .detail("roles", roles.clone());
    let ctx = actor.ctx.clone();
    let result = tessera
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                let row = users::insert(
                    conn,
                    &NewUser {
                        id,
                        username: name.as_str(),
                        password_hash: &hash,
                        roles: &roles,
                    },
                )?;
                audit::record(conn, &[event], &ctx)?;
                Ok::<_, crate::store::StoreError>(row)
            })
        })
        .await;
    match result {
        Err(e) if e.is_unique_violation() => Err(AuthError::Conflict(format!(
            "a user named `{username}` already exists"
        ))),
        other => Ok(other?),
    }
}

/// User records for `/v1/me`, remembered for a moment (see [`RecentReads`]): a
/// client typically calls it with the same token many times. What would make a token
/// unusable (disabling, revocation) goes through the denylist, not this memory.
pub(crate) struct Profiles {
    db: Db,
    recent: RecentReads<Uuid, Option<UserRow>>,
}

impl Profiles {
    pub(crate) fn new(db: Db) -> Self {
        Self {
            db,
            recent: RecentReads::new(std::time::Duration::from_secs(2), 10_000),
        }
    }

    #[tracing::instrument(name = "users.profiles.find", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
    pub(crate) async fn find(
        &self,
        user_id: Uuid,
    ) -> Result<Option<UserRow>, crate::store::StoreError> {
        if let Some(row) = self.recent.get(&user_id) {
            return Ok(row);
        }
        let row = self
            .db
            .run(move |conn| users::find_by_id(conn, user_id))
            .await?;
        self.recent.put(user_id, row.clone());
        Ok(row)
    }

    pub(crate) fn forget(&self, user_id: Uuid) {
        self.recent.forget(&user_id);
    }
}

/// Users by username, optionally those whose name contains `search`; `after` is the
/// last username of the previous page. The admin API and `tessera user list` read
/// them through here.
#[tracing::instrument(name = "users.list", level = "debug", skip_all, err(level = "debug"))]
pub async fn list(
    tessera: &Tessera,
    search: Option<String>,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<UserRow>, AuthError> {
    use crate::domain::Username;
    if search
        .as_ref()
        .is_some_and(|q| q.chars().count() > Username::MAX_LEN)
    {
        return Err(AuthError::InvalidRequest(
            "q is longer than any username".to_owned(),
        ));
    }
    let after = after
        .as_deref()
        .map(|c| {
            Username::parse(c).map_err(|_| AuthError::InvalidRequest("invalid cursor".to_owned()))
        })
        .transpose()?
        .map(Username::into_inner);
    // Text no username can contain matches nothing (and never reaches the database).
    if search
        .as_deref()
        .is_some_and(|q| Username::parse(q).map_or(true, |u| u.as_str() != q.to_ascii_lowercase()))
    {
        return Ok(Vec::new());
    }
    Ok(tessera
        .db
        .run(move |conn| users::list(conn, search.as_deref(), after.as_deref(), limit))
        .await?)
}

/// A user's own record for `/v1/me`, from the few-second cache (see [`Profiles`]).
#[tracing::instrument(name = "users.profile", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub(crate) async fn profile(
    tessera: &Tessera,
    user_id: Uuid,
) -> Result<Option<UserRow>, AuthError> {
    Ok(tessera.profiles.find(user_id).await?)
}

/// A user by id.
#[tracing::instrument(name = "users.find", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub(crate) async fn find(tessera: &Tessera, user_id: Uuid) -> Result<UserRow, AuthError> {
    tessera
        .db
        .run(move |conn| users::find_by_id(conn, user_id))
        .await?
        .ok_or_else(no_such_user)
}

/// A user by username (the CLI names users by name).
#[tracing::instrument(
    name = "users.find_by_username",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub async fn find_by_username(tessera: &Tessera, username: &str) -> Result<UserRow, AuthError> {
    let name = crate::domain::Username::parse(username).map_err(AuthError::InvalidRequest)?;
    tessera
        .db
        .run(move |conn| users::find_by_username(conn, name.as_str()))
        .await?
        .ok_or_else(no_such_user)
}

fn no_such_user() -> AuthError {
    AuthError::NotFound("no such user".to_owned())
}

/// Changes roles and/or the disabled flag. Disabling ends every session and live
/// token of the user at once; a role change cuts the live access tokens so the next
/// refresh carries the new roles.
#[tracing::instrument(name = "users.update", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub async fn update(
    tessera: &Tessera,
    user_id: Uuid,
    roles: Option<Vec<Role>>,
    disabled: Option<bool>,
    actor: &Actor,
) -> Result<UserRow, AuthError> {
    let roles: Option<Vec<String>> =
        roles.map(|r| r.iter().map(|r| r.as_str().to_owned()).collect());
    let mut events = Vec::new();
    if let Some(roles) = &roles {
        events.push(
            actor
                .event(action::USER_UPDATED)
                .user(user_id)
                .detail("roles", roles.clone()),
        );
    }
    match disabled {
        Some(true) => events.push(actor.event(action::USER_DISABLED).user(user_id)),
        Some(false) => events.push(actor.event(action::USER_ENABLED).user(user_id)),
        None => {}
    }
    let disable_asked = disabled == Some(true);
    let changes = users::UserChanges { roles, disabled };
    let updated = revocation::revoke_with(
        tessera,
        move |conn| {
            // Locked, so two changes of one user are decided one after the other: a
            // disable racing an enable always ends the sessions the enable let start,
            // and a role change racing another always revokes the tokens of the first.
            let before = users::find_by_id_for_update(conn, user_id)?.ok_or_else(no_such_user)?;
            let after = users::update(conn, user_id, &changes)?.ok_or_else(no_such_user)?;
            // Asked to disable, the sessions end even if the flag was set already: a
            // session left open by some earlier path ends now (ending is idempotent).
            let targets = if after.disabled && (!before.disabled || disable_asked) {
                vec![Target::User(user_id)]
            } else if after.roles != before.roles {
                vec![Target::UserTokens(user_id)]
            } else {
                vec![]
            };
            Ok((after, targets))
        },
        "user_updated_by_admin",
        &actor.label(),
        events,
        &actor.ctx,
    )
    .await;
    tessera.profiles.forget(user_id);
    updated
}

/// Sets a new password chosen by an administrator; every session of the user ends.
#[tracing::instrument(name = "users.reset_password", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub(crate) async fn reset_password(
    tessera: &Tessera,
    user_id: Uuid,
    password: NewPassword,
    actor: &Actor,
) -> Result<(), AuthError> {
    let hash = tessera.passwords.hash(password).await?;
    revocation::revoke_with(
        tessera,
        move |conn| {
            users::find_by_id(conn, user_id)?.ok_or_else(no_such_user)?;
            users::set_password_hash(conn, user_id, &hash)?;
            Ok(((), vec![Target::User(user_id)]))
        },
        "password_reset_by_admin",
        &actor.label(),
        vec![actor.event(action::USER_PASSWORD_RESET).user(user_id)],
        &actor.ctx,
    )
    .await?;
    tessera.profiles.forget(user_id);
    Ok(())
}

/// Ends every session and live access token of a user.
#[tracing::instrument(name = "users.revoke_everything", level = "debug", skip_all, fields(%user_id, %reason), err(level = "debug"))]
pub(crate) async fn revoke_everything(
    tessera: &Tessera,
    user_id: Uuid,
    reason: &str,
    actor: &Actor,
) -> Result<(), AuthError> {
    revocation::revoke_with(
        tessera,
        move |conn| {
            users::find_by_id(conn, user_id)?.ok_or_else(no_such_user)?;
            Ok(((), vec![Target::User(user_id)]))
        },
        reason,
        &actor.label(),
        vec![actor
            .event(action::USER_REVOKED)
            .user(user_id)
            .detail("reason", reason.to_owned())],
        &actor.ctx,
    )
    .await
}

/// Changes a user's password after checking the current one, and ends every other
/// session of the user in the same transaction (the one in use stays).
#[tracing::instrument(name = "users.change_password", level = "debug", skip_all, fields(%user_id, sid = %current_session), err(level = "debug"))]
pub(crate) async fn change_password(
    tessera: &Tessera,
    user_id: Uuid,
    current_session: Uuid,
    current: Password,
    new: NewPassword,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let user = tessera
        .db
        .run(move |conn| users::find_by_id(conn, user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or(AuthError::InvalidCredentials)?;
    // The same counters as logins to this account: a stolen access token does not buy
    // unlimited guesses at the password.
    let account = throttle::account_key(&user.username);
    let ticket = throttle::check(tessera, &account, ctx).await?;
    let matched = tessera
        .passwords
        .verify(current, Some(user.password_hash.clone()))
        .await?;
    if !matched {
        throttle::failed(tessera, &ticket, Some(user_id), ctx).await?;
        let event = AuditEvent::new(action::PASSWORD_CHANGE_FAILED)
            .actor(user_id)
            .user(user_id)
            .session(current_session);
        let ctx2 = ctx.clone();
        tessera
            .db
            .run(move |conn| audit::record(conn, &[event], &ctx2))
            .await?;
        return Err(AuthError::WrongPassword);
    }
    throttle::succeeded(tessera, &ticket).await;
    let new_hash = tessera.passwords.hash(new).await?;
    let event = AuditEvent::new(action::PASSWORD_CHANGED)
        .actor(user_id)
        .user(user_id)
        .session(current_session);
    revocation::revoke_with(
        tessera,
        move |conn| {
            users::set_password_hash(conn, user_id, &new_hash)?;
            let mut others: Vec<Uuid> = sessions::live_for_user(conn, user_id)?
                .into_iter()
                .map(|s| s.id)
                .filter(|&id| id != current_session)
                .collect();
            // Ended (and so locked) in id order, as every change that locks several
            // sessions does (a refresh group locks its rows in that order too).
            others.sort_unstable();
            Ok(((), others.into_iter().map(Target::Session).collect()))
        },
        "password_changed",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await?;
    tessera.profiles.forget(user_id);
    Ok(())
}

/// Self-registration: [`create`] behind the same per-source brute-force protection as
/// logins. A taken name counts as a failed attempt, so finding out that a name exists
/// costs a source exactly what a login attempt costs (and the answer takes the same
/// bcrypt time either way, the hash being made before the insert).
#[tracing::instrument(
    name = "users.register",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn register(
    tessera: &Tessera,
    username: Username,
    password: NewPassword,
    actor: &Actor,
) -> Result<UserRow, AuthError> {
    let ticket = throttle::check_registration(tessera, &actor.ctx).await?;
    match create(tessera, username, password, vec![], actor).await {
        Ok(user) => {
            throttle::succeeded(tessera, &ticket).await;
            Ok(user)
        }
        Err(AuthError::Conflict(message)) => {
            throttle::failed(tessera, &ticket, None, &actor.ctx).await?;
            Err(AuthError::Conflict(message))
        }
        Err(e) => {
            // Not the caller's doing: give the reservation back.
            throttle::succeeded(tessera, &ticket).await;
            Err(e)
        }
    }
}

/// Lifts every brute-force delay and lockout on a user's account, from every source
/// (an admin action, audited).
#[tracing::instrument(name = "users.unlock", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub(crate) async fn unlock(
    tessera: &Tessera,
    user_id: Uuid,
    actor: &Actor,
) -> Result<(), AuthError> {
    let user = tessera
        .db
        .run(move |conn| users::find_by_id(conn, user_id))
        .await?
        .ok_or_else(no_such_user)?;
    let sources = throttle::unlock(tessera, &user.username).await?;
    let event = actor
        .event(action::USER_UNLOCKED)
        .user(user_id)
        .detail("sources", sources as u64);
    let ctx = actor.ctx.clone();
    tessera
        .db
        .run(move |conn| audit::record(conn, &[event], &ctx))
        .await?;
    Ok(())
}

/// What [`bootstrap_admin`] found or did.
pub(crate) enum Bootstrap {
    /// The configured administrator was created (this was the first start).
    Created(String),
    /// There are users already: nothing to do.
    NotNeeded,
    /// There are no users and none is configured: someone has to create one.
    NoUsers,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BootstrapError {
    /// A configured value is unusable (named by its variable).
    #[error("{variable}: {message}")]
    Invalid { variable: String, message: String },
    #[error(transparent)]
    Failed(AuthError),
}

/// Creates the administrator configured by `TESSERA_BOOTSTRAP_ADMIN`, on a first start
/// only (no users yet). Another instance winning the same race is not an error.
#[tracing::instrument(
    name = "users.bootstrap_admin",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn bootstrap_admin(tessera: &Tessera) -> Result<Bootstrap, BootstrapError> {
    use secrecy::ExposeSecret;
    let failed = |e: AuthError| BootstrapError::Failed(e);
    let users = tessera
        .db
        .run(users::count)
        .await
        .map_err(|e| failed(e.into()))?;
    let admin = match (users, &tessera.settings.bootstrap_admin) {
        (0, Some(admin)) => admin,
        (0, None) => return Ok(Bootstrap::NoUsers),
        _ => return Ok(Bootstrap::NotNeeded),
    };
    let invalid = |variable: &str, message: String| BootstrapError::Invalid {
        variable: variable.to_owned(),
        message,
    };
    let username =
        Username::parse(&admin.username).map_err(|e| invalid("TESSERA_BOOTSTRAP_ADMIN", e))?;
    let password = NewPassword::parse(
        admin.password.expose_secret().to_owned(),
        tessera.settings.passwords.min_length,
    )
    .map_err(|e| invalid("TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE", e.to_string()))?;
    let role = Role::parse(Role::ADMIN).expect("admin is a valid role");
    match create(
        tessera,
        username,
        password,
        vec![role],
        &Actor::command_line(),
    )
    .await
    {
        Ok(user) => Ok(Bootstrap::Created(user.username)),
        // Another instance won the race on the same first start.
        Err(AuthError::Conflict(_)) => Ok(Bootstrap::NotNeeded),
        Err(e) => Err(failed(e)),
    }
}
