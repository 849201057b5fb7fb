//! The life cycle `next -> current -> retired -> gone`: the step every instance runs on
//! a timer, and the rotations an operator asks for. The database is the only truth; the
//! steps run under a PostgreSQL advisory lock, so any number of instances converge.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};

use super::generate::{generate, open_private_key};
use super::{KeyError, KeyPolicy};
use crate::auth::chrono_duration;
use crate::auth::master_key::MasterKey;
use crate::domain::{KeyState, SigningAlgorithm, MAX_ACCESS_TOKEN_TTL};
use crate::store::signing_keys as store;
use crate::store::StoreError;

/// Extra time a retired key stays published beyond the longest token lifetime, for
/// clock skew between Tessera and verifiers.
const RETIRED_KEY_MARGIN: Duration = Duration::from_secs(60);

fn insert_generated(
    conn: &mut PgConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    state: KeyState,
    activated_at: Option<DateTime<Utc>>,
) -> Result<String, KeyError> {
    let key = generate(algorithm)?;
    let sealed = master.seal(&key.pkcs8, key.kid.as_bytes());
    store::insert(
        conn,
        &store::NewSigningKey {
            kid: &key.kid,
            algorithm,
            state,
            public_jwk: &key.public_jwk,
            private_key_sealed: &sealed,
            activated_at,
        },
    )?;
    tracing::info!(kid = %key.kid, %algorithm, state = state.as_str(), "created a signing key");
    Ok(key.kid)
}

/// How long a key that stops signing now must stay published: as long as the longest
/// lifetime any token may have (see [`MAX_ACCESS_TOKEN_TTL`]), plus a margin.
fn retired_publish_seconds() -> f64 {
    (MAX_ACCESS_TOKEN_TTL + RETIRED_KEY_MARGIN).as_secs_f64()
}

/// One step of the key life cycle; idempotent, safe to run from every instance at once.
pub(super) fn maintain(
    conn: &mut PgConnection,
    policy: &KeyPolicy,
    master: &MasterKey,
) -> Result<(), KeyError> {
    conn.transaction(|conn| {
        store::lock_life_cycle(conn)?;
        let now = store::db_now(conn)?;
        let current = store::in_state(conn, KeyState::Current)?;
        let next = store::in_state(conn, KeyState::Next)?;
        let publish_ahead = chrono_duration(policy.publish_ahead);

        let Some(current) = current else {
            // First start (nobody can have cached anything yet), or a previous emergency.
            if next.is_some() {
                store::promote_next(conn)?;
            } else {
                insert_generated(conn, master, policy.algorithm, KeyState::Current, Some(now))?;
            }
            return Ok(());
        };

        // A waiting key of another algorithm is left alone: during a rolling change of
        // TESSERA_SIGNING_ALG, instances with the old and the new setting must not undo
        // each other's keys. It signs when due; then the configured algorithm follows.
        let algorithm_changed = current.algorithm != policy.algorithm;
        match next {
            None => {
                let activated = current.activated_at.unwrap_or(current.created_at);
                let due = activated + chrono_duration(policy.rotation_interval);
                if algorithm_changed || now >= due - publish_ahead {
                    let starts = if algorithm_changed {
                        now + publish_ahead
                    } else {
                        due.max(now + publish_ahead)
                    };
                    insert_generated(conn, master, policy.algorithm, KeyState::Next, Some(starts))?;
                }
            }
            // A waiting key carries the time it is due to start signing.
            Some(next) if next.activated_at.is_some_and(|at| now >= at) => {
                let publish = retired_publish_seconds();
                store::retire_current(conn, publish)?;
                store::promote_next(conn)?;
                tracing::info!(kid = %next.kid, retired = %current.kid, "rotated the signing key");
            }
            Some(_) => {}
        }
        Ok(())
    })
}

/// What an operator's rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The new key: for a normal rotation the published `next` key, for an emergency
    /// the key that signs now.
    pub kid: String,
    /// A `next` key of the configured algorithm was already published and waiting:
    /// nothing was created, its start was only brought forward.
    pub already_pending: bool,
    /// When `kid` starts (or started) signing.
    pub signs_at: DateTime<Utc>,
    /// Emergency only: the key that was signing and is now gone from the JWKS.
    pub dropped: Option<String>,
}

/// A rotation asked for by an operator, recorded by `record` (the audit log) in the
/// same transaction.
pub(super) fn rotate_now(
    conn: &mut PgConnection,
    policy: &KeyPolicy,
    master: &MasterKey,
    emergency: bool,
    record: &RecordRotation,
) -> Result<Rotation, KeyError> {
    let rotation = conn.transaction::<_, KeyError, _>(|conn| {
        let rotation = choose_rotation(conn, policy, master, emergency)?;
        record(conn, &rotation)?;
        Ok(rotation)
    })?;
    maintain(conn, policy, master)?;
    Ok(rotation)
}

/// Writes what a rotation did, inside its transaction.
pub type RecordRotation =
    dyn Fn(&mut PgConnection, &Rotation) -> Result<(), StoreError> + Send + Sync;

fn choose_rotation(
    conn: &mut PgConnection,
    policy: &KeyPolicy,
    master: &MasterKey,
    emergency: bool,
) -> Result<Rotation, KeyError> {
    store::lock_life_cycle(conn)?;
    let now = store::db_now(conn)?;
    if emergency {
        // The old key may be in the wrong hands: it stops signing and leaves the
        // JWKS at once; tokens it signed stop verifying.
        let dropped = store::in_state(conn, KeyState::Current)?.map(|row| row.kid);
        store::retire_current(conn, 0.0)?;
        store::delete_next(conn)?;
        let kid = insert_generated(conn, master, policy.algorithm, KeyState::Current, Some(now))?;
        tracing::warn!(
            dropped = dropped.as_deref().unwrap_or("-"),
            new = %kid,
            "emergency key rotation: signing key {} was dropped from the JWKS; tokens it \
             signed no longer verify",
            dropped.as_deref().unwrap_or("(none)")
        );
        return Ok(Rotation {
            kid,
            already_pending: false,
            signs_at: now,
            dropped,
        });
    }
    let starts = now + chrono_duration(policy.publish_ahead);
    Ok(match store::in_state(conn, KeyState::Next)? {
        Some(next) if next.algorithm == policy.algorithm => {
            let earliest = next.created_at + chrono_duration(policy.publish_ahead);
            let signs_at = earliest.max(now).min(starts);
            store::set_next_activation(conn, signs_at)?;
            Rotation {
                kid: next.kid,
                already_pending: true,
                signs_at,
                dropped: None,
            }
        }
        waiting => {
            if waiting.is_some() {
                store::delete_next(conn)?;
            }
            let kid =
                insert_generated(conn, master, policy.algorithm, KeyState::Next, Some(starts))?;
            Rotation {
                kid,
                already_pending: false,
                signs_at: starts,
                dropped: None,
            }
        }
    })
}

/// Checks that the master key opens every stored private key, changing nothing.
pub(super) fn check_master_key(
    conn: &mut PgConnection,
    master: &MasterKey,
) -> Result<(), KeyError> {
    for row in store::all(conn)? {
        if !row.private_key_sealed.is_empty() {
            open_private_key(&row, master)?;
        }
    }
    Ok(())
}
