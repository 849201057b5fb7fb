//! The rules: who may have a token, for what, and for how long. HTTP handlers and the
//! command line call in here through a [`Tessera`] handle; this module uses `store` and
//! never knows about HTTP.

pub(crate) mod access;
pub mod audit;
pub(crate) mod authorize;
pub(crate) mod background;
pub(crate) mod browser_sessions;
pub mod clients;
pub(crate) mod consents;
pub(crate) mod grants;
pub(crate) mod id_token;
pub(crate) mod introspection;
pub mod keys;
pub(crate) mod login;
pub mod master_key;
pub(crate) mod passwords;
pub(crate) mod recent;
pub(crate) mod refresh_chain;
pub mod refresh_mac;
pub mod revocation;
pub mod sealing;
pub(crate) mod service;
pub(crate) mod sessions;
pub(crate) mod throttle;
pub(crate) mod token_revocation;
pub mod tokens;
pub mod users;

pub(crate) use service::OpenError;
pub(crate) use users::BootstrapError;

use std::ops::Deref;
use std::sync::Arc;

use clients::Directory;
use keys::KeyRing;
use passwords::PasswordHasher;
use revocation::DenylistSync;
use users::Profiles;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::denylist::Denylist;
use crate::store::throttle::Throttle;
use crate::store::{Db, DbError, StoreError};

/// The one handle through which HTTP handlers and the command line reach the rules
/// (opened by [`Tessera::open`] or [`Tessera::open_admin`]). It owns what they need:
/// the database pool, the Redis denylist and throttle, the password hasher, the key
/// ring, the short-lived caches, the metrics; and hands none of it out: the fields are
/// private to `auth`. Every operation is a function of a child module taking it
/// first (`users::create(&tessera, ..)`), so the handle lives here, at the root, and
/// the children depend on their parent, never on each other through it.
/// Cheap to clone: every clone shares one set of connections, caches and keys.
#[derive(Clone)]
pub struct Tessera(Arc<Parts>);

pub struct Parts {
    pub(in crate::auth) settings: Settings,
    pub(in crate::auth) db: Db,
    pub(in crate::auth) denylist: Denylist,
    pub(in crate::auth) denylist_sync: DenylistSync,
    /// This instance's reader of the revocation feed and its subscribers' wake-ups.
    pub(in crate::auth) feed: revocation::feed::Feed,
    pub(in crate::auth) throttle: Throttle,
    pub(in crate::auth) clients: Directory,
    pub(in crate::auth) profiles: Profiles,
    pub(in crate::auth) keys: KeyRing,
    /// The refresh-token MAC key; `None` on a handle opened without the master key.
    pub(in crate::auth) refresh_mac: Option<refresh_mac::RefreshMac>,
    /// The keys of login flows and their forms; `None` like `refresh_mac`.
    pub(in crate::auth) flow_keys: Option<authorize::FlowKeys>,
    /// The refresh rotation's async connections, on the HTTP workers' own threads.
    pub(in crate::auth) rotation: crate::store::rotation::RotationPools,
    pub(in crate::auth) passwords: PasswordHasher,
    pub(in crate::auth) metrics: Metrics,
}

impl Tessera {
    /// The keys of login flows and forms, which only a handle opened with the master
    /// key has.
    pub(in crate::auth) fn flow_keys(&self) -> Result<&authorize::FlowKeys, AuthError> {
        self.flow_keys
            .as_ref()
            .ok_or(AuthError::Keys(keys::KeyError::PublicOnly))
    }

    /// The refresh-token MAC key, which only a handle opened with the master key has.
    pub(in crate::auth) fn refresh_mac(&self) -> Result<&refresh_mac::RefreshMac, AuthError> {
        self.refresh_mac
            .as_ref()
            .ok_or(AuthError::Keys(keys::KeyError::PublicOnly))
    }
}

impl Deref for Tessera {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// How long an instance may answer from its memory of a client record: a change made
/// through another instance (a deleted client) is seen within this time, so revoking
/// a client's tokens also covers tokens minted meanwhile from a remembered record.
pub(crate) const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// A standard-library duration as chrono's, saturating (a configured duration can be
/// larger than chrono represents).
pub(crate) fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Where a request came from, for sessions and the audit log.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who performs an administrative change, for the audit log.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    /// The admin user; `None` for the command line.
    pub user_id: Option<uuid::Uuid>,
    pub ctx: RequestContext,
}

impl Actor {
    pub fn command_line() -> Self {
        Self::default()
    }

    pub(crate) fn admin(user_id: uuid::Uuid, ctx: RequestContext) -> Self {
        Self {
            user_id: Some(user_id),
            ctx,
        }
    }

    /// The `revoked_by` of revocations this actor makes.
    pub(crate) fn label(&self) -> String {
        self.user_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| "cli".to_owned())
    }

    pub(crate) fn event(&self, action: &'static str) -> audit::AuditEvent {
        let event = audit::AuditEvent::new(action);
        match (self.user_id, &self.ctx.ip) {
            (Some(id), _) => event.actor(id),
            (None, Some(_)) => event.detail("via", "self_registration"),
            (None, None) => event.detail("via", "cli"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password, unknown or disabled account: one answer for all.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A signed-in user gave the wrong current password (e.g. to change it).
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0}")]
    NotFound(String),
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    /// A grant that cannot be honoured (an authorization code that is unknown, spent,
    /// expired or bound to something else): RFC 6749 `invalid_grant`.
    #[error("{0}")]
    InvalidGrant(String),
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
    /// Brute-force protection: wait this long before trying again.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// A dependency needed to answer safely (Redis) cannot be reached.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
}

impl From<diesel::result::Error> for AuthError {
    fn from(e: diesel::result::Error) -> Self {
        AuthError::Store(e.into())
    }
}

impl DbError for AuthError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            AuthError::Store(e) => Some(e),
            _ => None,
        }
    }
}
