//! The rules: who may have a token, for what, and for how long. Handlers call in here;
//! this module uses `store` and never knows about HTTP.

pub mod clients;
pub mod grants;
pub mod keys;
pub mod master_key;
pub mod passwords;
pub mod sealing;
pub mod tokens;
pub mod users;

use crate::store::{DbError, StoreError};

/// Where a request came from, for sessions and the audit log.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password, unknown or disabled account: one answer for all.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
}

impl DbError for AuthError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            AuthError::Store(e) => Some(e),
            _ => None,
        }
    }
}
