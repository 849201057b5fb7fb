//! Signing keys: `generate` makes key material, `life_cycle` moves keys through
//! `next -> current -> retired -> gone`, `ring` holds the in-memory key set every
//! request reads. The algorithm is [`crate::domain::SigningAlgorithm`]; private halves
//! are sealed at rest under the master key (`master_key`).
//!
//! The database is the only truth. Each instance runs the same idempotent life-cycle
//! step on a timer under a PostgreSQL advisory lock, then reloads its key set if the
//! published keys changed, so any number of instances converge without talking to
//! each other.

mod generate;
mod life_cycle;
mod ring;
pub mod signer;

use std::time::Duration;

use diesel::PgConnection;

pub use life_cycle::{RecordRotation, Rotation};
pub use ring::{KeyRing, KeySet, SigningKey};

use crate::domain::SigningAlgorithm;
use crate::store::signing_keys::{self as store, SigningKeyRow};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the master key cannot decrypt signing key {kid}: is TESSERA_MASTER_KEY (or the key \
         file) the one these keys were created with? Nothing was changed."
    )]
    WrongMasterKey { kid: String },
    #[error("signing key {kid} is unusable: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error("no signing key is available")]
    NoSigningKey,
    /// A handle opened without the master key (the command line's user, client and
    /// audit commands) cannot change keys.
    #[error("the signing keys were opened without the master key: they cannot be changed here")]
    PublicOnly,
}

/// When keys change. All durations come from configuration.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotation_interval: Duration,
    /// How long a new key is published before it signs; longer than the JWKS cache
    /// lifetime, so no verifier meets a `kid` it has not seen.
    pub publish_ahead: Duration,
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Store(e.into())
    }
}

impl crate::store::DbError for KeyError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            KeyError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// What an operator's rotation did, and whether the other instances were told.
pub struct RotationReport {
    pub rotation: Rotation,
    /// How many instances heard the announcement; an error when Redis is unreachable
    /// (they pick the change up at their next key refresh).
    pub announced: Result<u64, crate::store::denylist::RedisUnavailable>,
}

/// An operator's rotation (admin API, `tessera keys rotate`): rotates, records it in
/// the audit log in the same transaction, and announces it so every instance reloads
/// its keys now instead of at its next key refresh.
#[tracing::instrument(name = "keys.rotate", level = "debug", skip_all, fields(%emergency), err(level = "debug"))]
pub async fn rotate(
    tessera: &super::Tessera,
    emergency: bool,
    actor: &super::Actor,
) -> Result<RotationReport, KeyError> {
    let (actor_event, ctx) = (
        actor.event(super::audit::action::KEYS_ROTATED),
        actor.ctx.clone(),
    );
    let record = move |conn: &mut PgConnection, rotation: &Rotation| {
        let mut event = actor_event
            .clone()
            .detail("emergency", emergency)
            .detail("kid", rotation.kid.clone())
            .detail("already_pending", rotation.already_pending);
        if let Some(dropped) = &rotation.dropped {
            event = event.detail("dropped_kid", dropped.clone());
        }
        super::audit::record(conn, &[event], &ctx)
    };
    let rotation = tessera.keys.rotate(emergency, Box::new(record)).await?;
    let announced = crate::store::key_events::announce(
        &mut tessera.denylist.connection(),
        &tessera.settings.redis.prefix,
        &rotation.kid,
    )
    .await;
    if let Err(e) = &announced {
        tracing::warn!(error = %e, "could not announce the key change; other instances pick it up at their next key refresh");
    }
    Ok(RotationReport {
        rotation,
        announced,
    })
}

/// Key rows for `keys list` and the admin API: state and dates, no private material.
#[tracing::instrument(name = "keys.list", level = "debug", skip_all, err(level = "debug"))]
pub async fn list(tessera: &super::Tessera) -> Result<Vec<SigningKeyRow>, StoreError> {
    tessera.db.run(store::all).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key set with one freshly generated signing key, as if loaded from the database.
    pub(crate) fn test_key_set(algorithm: SigningAlgorithm) -> KeySet {
        KeySet::ephemeral(algorithm).unwrap()
    }
}
