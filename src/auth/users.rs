//! Accounts: creation and password rules shared by the CLI and the API.

use uuid::Uuid;

use super::passwords::PasswordHasher;
use super::AuthError;
use crate::domain::{NewPassword, Role, Username};
use crate::store::users::{self, NewUser, UserRow};
use crate::store::Db;

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
