//! Revocation that takes effect at once and is never lost.
//!
//! A revocation is accepted once PostgreSQL has recorded it (`revocations`, in the same
//! transaction as the sessions it ends and its audit events). It is then pushed to the
//! Redis denylist, which every bearer check reads. If Redis is unreachable the row
//! stays marked unsynced and a background job (on every instance) pushes it when Redis
//! is back; if Redis loses its data, the first check notices the missing `ready`
//! marker and rebuilds the list from PostgreSQL before answering, and so does the
//! background pass if it runs first. Every revocation moves a generation counter in
//! PostgreSQL forward; the `ready` marker holds the generation Redis is complete up
//! to, so a Redis that came back from an old snapshot (its marker behind) gets the
//! revocations it lacks within a second. Only a pass that wrote everything up to a
//! generation may set the marker to it. While Redis cannot be read, token checks fail
//! closed.
//!
//! Here: what can be revoked and the errors of a check; `record` writes revocations,
//! `sync` keeps Redis complete, `check` answers for a token, `admin` is an
//! administrator's way to ask for one (a client's, RFC 7009, is `auth::token_revocation`),
//! `feed` publishes them to the services that verify tokens offline.

mod admin;
mod check;
pub(crate) mod feed;
mod record;
mod sync;

use std::sync::atomic::{AtomicBool, AtomicI64};

use uuid::Uuid;

pub(crate) use admin::{list, revoke_by_admin, Revoke};
pub(crate) use check::ensure_not_revoked;
pub(crate) use record::{revoke, revoke_with};
pub use sync::{rebuild, sync_pending, Rebuild};

use crate::store::denylist::RedisUnavailable;
pub(crate) use crate::store::revocations::RevocationRow;
use crate::store::StoreError;

/// What to revoke.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One access token, until it expires (unix seconds).
    AccessToken { jti: String, expires_at: i64 },
    /// One access token known only by its `jti`: denied for the longest lifetime.
    TokenId(String),
    /// A session: its refresh tokens and its live access tokens.
    Session(Uuid),
    /// Every session and live access token of a user.
    User(Uuid),
    /// Every live access token of a user, sessions untouched: the next refresh mints
    /// tokens with what changed (roles).
    UserTokens(Uuid),
    /// Every live access token minted through a client.
    Client(String),
}

/// Per-instance bookkeeping of the denylist's health.
#[derive(Default)]
pub(crate) struct DenylistSync {
    /// Set when this instance failed to reach Redis: before trusting Redis again, push
    /// whatever PostgreSQL has that Redis may have missed.
    suspect: AtomicBool,
    rebuild: tokio::sync::Mutex<()>,
    /// The highest `ready` marker this instance has seen in Redis. Markers only move
    /// forward (unless PostgreSQL itself went back: see `clamp_highest_marker`), so one
    /// below it means Redis went back in time (restored from an older
    /// snapshot, failed over to a replica that missed writes): the entries after it
    /// may be gone, and the next check writes them again before it answers.
    highest_marker: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the token has been revoked")]
    Revoked,
    #[error("the revocation list cannot be read: {0}")]
    Unavailable(String),
}

impl From<RedisUnavailable> for CheckError {
    fn from(e: RedisUnavailable) -> Self {
        CheckError::Unavailable(e.to_string())
    }
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Unavailable(e.to_string())
    }
}
