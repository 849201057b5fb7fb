//! Signing keys: generation, encryption at rest, the life cycle
//! `next -> current -> retired -> gone`, and the in-memory key set every request reads.
//!
//! The database is the only truth. Each instance runs the same idempotent life-cycle
//! step on a timer under a PostgreSQL advisory lock, then reloads its key set if the
//! published keys changed, so any number of instances converge without talking to
//! each other.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::chrono_duration;
use super::master_key::MasterKey;
use crate::config::MAX_ACCESS_TOKEN_TTL;
use crate::store::signing_keys::{self as store, SigningKeyRow, STATE_CURRENT, STATE_NEXT};
use crate::store::{Db, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Es256,
    EdDsa,
    Rs256,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::Es256, Self::EdDsa, Self::Rs256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(Self::Es256),
            "EDDSA" | "ED25519" => Ok(Self::EdDsa),
            "RS256" => Ok(Self::Rs256),
            _ => Err(format!("`{s}` is not one of: ES256, EdDSA, RS256")),
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Extra time a retired key stays published beyond the longest token lifetime, for
/// clock skew between Tessera and verifiers.
const RETIRED_KEY_MARGIN: Duration = Duration::from_secs(60);

/// A freshly generated key pair, before it is sealed and stored.
struct GeneratedKey {
    kid: String,
    public_jwk: serde_json::Value,
    pkcs8: Zeroizing<Vec<u8>>,
}

fn generate(algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
    let fail = |what: &str| KeyError::Generation(format!("{algorithm}: {what}"));
    let pkcs8: Zeroizing<Vec<u8>> = Zeroizing::new(match algorithm {
        SigningAlgorithm::Es256 => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| fail("P-256 generation"))?
                .as_ref()
                .to_vec()
        }
        SigningAlgorithm::EdDsa => {
            let pair = Ed25519KeyPair::generate().map_err(|_| fail("Ed25519 generation"))?;
            AsDer::<Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| fail("Ed25519 encoding"))?
                .as_ref()
                .to_vec()
        }
        SigningAlgorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| fail("RSA-2048 generation"))?;
            AsDer::<Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| fail("RSA encoding"))?
                .as_ref()
                .to_vec()
        }
    });
    let encoding = encoding_key(algorithm, &pkcs8).map_err(|e| fail(&e))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt_algorithm())
        .map_err(|e| fail(&e.to_string()))?;
    // RFC 7638 thumbprint: a kid that names the key itself.
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| fail(&e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public_jwk = serde_json::to_value(&jwk).map_err(|e| fail(&e.to_string()))?;
    Ok(GeneratedKey {
        kid,
        public_jwk,
        pkcs8,
    })
}

/// jsonwebtoken wants PKCS#8 DER for EC and Ed25519 but PKCS#1 for RSA; its PEM reader
/// unwraps PKCS#8 for us, so RSA keys go through PEM.
fn encoding_key(algorithm: SigningAlgorithm, pkcs8: &[u8]) -> Result<EncodingKey, String> {
    match algorithm {
        SigningAlgorithm::Es256 => Ok(EncodingKey::from_ec_der(pkcs8)),
        SigningAlgorithm::EdDsa => Ok(EncodingKey::from_ed_der(pkcs8)),
        SigningAlgorithm::Rs256 => {
            let b64 = Zeroizing::new(STANDARD.encode(pkcs8));
            let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())
        }
    }
}

/// The key that signs, held only in memory. Never `Debug`, never serialised.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    key: EncodingKey,
}

impl SigningKey {
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

/// A published public key, bound to the one algorithm it was generated for.
struct VerifyingKey {
    algorithm: tessera_token::Algorithm,
    key: DecodingKey,
}

fn verification_algorithm(algorithm: SigningAlgorithm) -> tessera_token::Algorithm {
    match algorithm {
        SigningAlgorithm::Es256 => tessera_token::Algorithm::Es256,
        SigningAlgorithm::EdDsa => tessera_token::Algorithm::EdDsa,
        SigningAlgorithm::Rs256 => tessera_token::Algorithm::Rs256,
    }
}

/// An immutable snapshot of the published keys, swapped whole when they change.
pub struct KeySet {
    fingerprint: String,
    signing: Option<SigningKey>,
    verifying: HashMap<String, VerifyingKey>,
    jwks: Bytes,
    etag: String,
    /// Tokens whose signatures these keys verified, so that a token used for many
    /// calls is verified once. Lives and dies with this key set.
    verified: std::sync::RwLock<HashMap<Box<str>, super::tokens::AccessClaims>>,
}

/// What `tessera_token` verifies a token against: only a `kid` we publish selects a
/// key, and the token's `alg` must be that key's.
impl tessera_token::VerificationKeys for KeySet {
    fn key(&self, kid: &str) -> Option<(tessera_token::Algorithm, &DecodingKey)> {
        self.verifying.get(kid).map(|k| (k.algorithm, &k.key))
    }
}

/// Bounds the remembered tokens; when full, the memory is simply cleared.
const VERIFIED_CACHE_MAX: usize = 8192;

impl KeySet {
    /// A key set of one freshly generated signing key that exists nowhere else: for
    /// tools that mint and verify without PostgreSQL (the fuzz targets, unit tests).
    /// The service itself only ever loads its keys from the database.
    pub fn ephemeral(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let key = generate(algorithm)?;
        // The private half is sealed only to go through the same loading path as
        // stored keys; the sealing key lives as long as this call.
        let mut sealing = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(sealing.as_mut())
            .map_err(|_| KeyError::Generation("random sealing key".to_owned()))?;
        let master = MasterKey::from_bytes(*sealing);
        let row = SigningKeyRow {
            kid: key.kid.clone(),
            algorithm: algorithm.as_str().to_owned(),
            state: STATE_CURRENT.to_owned(),
            public_jwk: key.public_jwk.clone(),
            private_key_sealed: master.seal(&key.pkcs8, key.kid.as_bytes()),
            created_at: Utc::now(),
            activated_at: Some(Utc::now()),
            retired_at: None,
            publish_until: None,
        };
        Self::build(&[row], Some(&master))
    }

    pub fn signing(&self) -> Result<&SigningKey, KeyError> {
        self.signing.as_ref().ok_or(KeyError::NoSigningKey)
    }

    /// The RFC 7517 JWK Set document, serialised once per key change.
    pub fn jwks(&self) -> &Bytes {
        &self.jwks
    }

    /// A strong validator of [`Self::jwks`]: the quoted SHA-256 of its bytes.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The claims of a token these keys verified before, if remembered.
    pub fn verified(&self, token: &str) -> Option<super::tokens::AccessClaims> {
        self.verified
            .read()
            .expect("verified-token cache lock")
            .get(token)
            .cloned()
    }

    pub fn remember_verified(&self, token: &str, claims: super::tokens::AccessClaims) {
        let mut cache = self.verified.write().expect("verified-token cache lock");
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.clear();
        }
        cache.insert(token.into(), claims);
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifying.keys().map(String::as_str)
    }

    /// The published keys; the signing key too when `master` is given.
    fn build(rows: &[SigningKeyRow], master: Option<&MasterKey>) -> Result<Self, KeyError> {
        let mut signing = None;
        let mut verifying = HashMap::with_capacity(rows.len());
        for row in rows {
            let algorithm = SigningAlgorithm::from_str(&row.algorithm).map_err(|reason| {
                KeyError::Unusable {
                    kid: row.kid.clone(),
                    reason,
                }
            })?;
            let unusable = |reason: String| KeyError::Unusable {
                kid: row.kid.clone(),
                reason,
            };
            let jwk: Jwk = serde_json::from_value(row.public_jwk.clone())
                .map_err(|e| unusable(format!("stored JWK: {e}")))?;
            let key = DecodingKey::from_jwk(&jwk).map_err(|e| unusable(e.to_string()))?;
            verifying.insert(
                row.kid.clone(),
                VerifyingKey {
                    algorithm: verification_algorithm(algorithm),
                    key,
                },
            );
            if let (STATE_CURRENT, Some(master)) = (row.state.as_str(), master) {
                let pkcs8 = open_private_key(row, master)?;
                let key = encoding_key(algorithm, pkcs8.expose_secret()).map_err(unusable)?;
                signing = Some(SigningKey {
                    kid: row.kid.clone(),
                    algorithm,
                    key,
                });
            }
        }
        let jwks = serde_json::to_vec(&serde_json::json!({
            "keys": rows.iter().map(|r| &r.public_jwk).collect::<Vec<_>>()
        }))
        .expect("JSON values serialise");
        let etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &jwks).as_ref())
        );
        Ok(Self {
            fingerprint: fingerprint(rows),
            signing,
            verifying,
            jwks: Bytes::from(jwks),
            etag,
            verified: Default::default(),
        })
    }
}

fn fingerprint(rows: &[SigningKeyRow]) -> String {
    rows.iter()
        .map(|r| format!("{}:{}", r.kid, r.state))
        .collect::<Vec<_>>()
        .join(",")
}

fn open_private_key(
    row: &SigningKeyRow,
    master: &MasterKey,
) -> Result<secrecy::SecretSlice<u8>, KeyError> {
    master
        .open(&row.private_key_sealed, row.kid.as_bytes())
        .map_err(|_| KeyError::WrongMasterKey {
            kid: row.kid.clone(),
        })
}

fn insert_generated(
    conn: &mut PgConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    state: &str,
    activated_at: Option<DateTime<Utc>>,
) -> Result<String, KeyError> {
    let key = generate(algorithm)?;
    let sealed = master.seal(&key.pkcs8, key.kid.as_bytes());
    store::insert(
        conn,
        &store::NewSigningKey {
            kid: &key.kid,
            algorithm: algorithm.as_str(),
            state,
            public_jwk: &key.public_jwk,
            private_key_sealed: &sealed,
            activated_at,
        },
    )?;
    tracing::info!(kid = %key.kid, %algorithm, state, "created a signing key");
    Ok(key.kid)
}

/// How long a key that stops signing now must stay published: as long as the longest
/// lifetime any token may have (see [`MAX_ACCESS_TOKEN_TTL`]), plus a margin.
fn retired_publish_seconds() -> f64 {
    (MAX_ACCESS_TOKEN_TTL + RETIRED_KEY_MARGIN).as_secs_f64()
}

/// One step of the key life cycle; idempotent, safe to run from every instance at once.
fn maintain(
    conn: &mut PgConnection,
    policy: &KeyPolicy,
    master: &MasterKey,
) -> Result<(), KeyError> {
    conn.transaction(|conn| {
        store::lock_life_cycle(conn)?;
        let now = store::db_now(conn)?;
        let current = store::in_state(conn, STATE_CURRENT)?;
        let next = store::in_state(conn, STATE_NEXT)?;
        let publish_ahead = chrono_duration(policy.publish_ahead);

        let Some(current) = current else {
            // First start (nobody can have cached anything yet), or a previous emergency.
            if next.is_some() {
                store::promote_next(conn)?;
            } else {
                insert_generated(conn, master, policy.algorithm, STATE_CURRENT, Some(now))?;
            }
            return Ok(());
        };

        // A waiting key of another algorithm is left alone: during a rolling change of
        // TESSERA_SIGNING_ALG, instances with the old and the new setting must not undo
        // each other's keys. It signs when due; then the configured algorithm follows.
        let algorithm_changed = current.algorithm != policy.algorithm.as_str();
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
                    insert_generated(conn, master, policy.algorithm, STATE_NEXT, Some(starts))?;
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
fn rotate_now(
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
        let dropped = store::in_state(conn, STATE_CURRENT)?.map(|row| row.kid);
        store::retire_current(conn, 0.0)?;
        store::delete_next(conn)?;
        let kid = insert_generated(conn, master, policy.algorithm, STATE_CURRENT, Some(now))?;
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
    Ok(match store::in_state(conn, STATE_NEXT)? {
        Some(next) if next.algorithm == policy.algorithm.as_str() => {
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
            let kid = insert_generated(conn, master, policy.algorithm, STATE_NEXT, Some(starts))?;
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
fn check_master_key(conn: &mut PgConnection, master: &MasterKey) -> Result<(), KeyError> {
    for row in store::all(conn)? {
        if !row.private_key_sealed.is_empty() {
            open_private_key(&row, master)?;
        }
    }
    Ok(())
}

/// The shared, hot-swappable key set of one instance.
pub struct KeyRing {
    db: Db,
    /// `None` for a ring that only publishes and verifies ([`KeyRing::public_only`]).
    master: Option<Arc<MasterKey>>,
    policy: KeyPolicy,
    current: ArcSwap<KeySet>,
    /// Held from reading the published keys to installing them: a timer tick that read
    /// the rows before an emergency rotation must not install them after the reload
    /// that the rotation's announcement caused (the dropped key would come back).
    loading: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// Verifies the master key against the stored keys, ensures a signing key exists,
    /// and loads the key set. A wrong master key stops here, before anything changes.
    #[tracing::instrument(name = "keys.start", level = "debug", skip_all, err(level = "debug"))]
    pub async fn start(db: Db, master: MasterKey, policy: KeyPolicy) -> Result<Self, KeyError> {
        let master = Arc::new(master);
        let rows = {
            let (master, policy) = (Arc::clone(&master), policy.clone());
            run(&db, move |conn| {
                check_master_key(conn, &master)?;
                maintain(conn, &policy, &master)?;
                Ok(store::published(conn)?)
            })
            .await?
        };
        let set = KeySet::build(&rows, Some(&master))?;
        Ok(Self::new(db, Some(master), policy, set))
    }

    /// The published public keys only, changing nothing and needing no master key:
    /// enough to verify tokens, never to sign or rotate.
    #[tracing::instrument(name = "keys.public_only", level = "debug", skip_all)]
    pub async fn public_only(db: Db, policy: KeyPolicy) -> Result<Self, KeyError> {
        let rows = run(&db, |conn| Ok(store::published(conn)?)).await?;
        let set = KeySet::build(&rows, None)?;
        Ok(Self::new(db, None, policy, set))
    }

    fn new(db: Db, master: Option<Arc<MasterKey>>, policy: KeyPolicy, set: KeySet) -> Self {
        Self {
            db,
            master,
            policy,
            current: ArcSwap::from_pointee(set),
            loading: Default::default(),
        }
    }

    fn master(&self) -> Result<Arc<MasterKey>, KeyError> {
        self.master.clone().ok_or(KeyError::PublicOnly)
    }

    /// The current snapshot; cheap (an atomic load), safe to hold across awaits.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// Runs the life-cycle step and reloads the key set if the published keys changed.
    #[tracing::instrument(name = "keys.tick", level = "debug", skip_all, err(level = "debug"))]
    pub async fn tick(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.loading.lock().await;
        let (master, policy) = (self.master()?, self.policy.clone());
        let rows = run(&self.db, move |conn| {
            maintain(conn, &policy, &master)?;
            Ok(store::published(conn)?)
        })
        .await?;
        self.install(&rows)
    }

    /// Operator rotation: publishes a new key now and lets it sign once it has been
    /// published for the publish-ahead time; `emergency` swaps at once instead.
    #[tracing::instrument(name = "keys.ring.rotate", level = "debug", skip_all, fields(%emergency), err(level = "debug"))]
    pub async fn rotate(
        &self,
        emergency: bool,
        record: Box<RecordRotation>,
    ) -> Result<Rotation, KeyError> {
        let _one_at_a_time = self.loading.lock().await;
        let (master, policy) = (self.master()?, self.policy.clone());
        let (rotation, rows) = run(&self.db, move |conn| {
            let rotation = rotate_now(conn, &policy, &master, emergency, &*record)?;
            Ok((rotation, store::published(conn)?))
        })
        .await?;
        self.install(&rows)?;
        Ok(rotation)
    }

    /// Reloads the key set from the database, without a life-cycle step: what an
    /// instance does when another one announces a key change.
    #[tracing::instrument(name = "keys.reload", level = "debug", skip_all, err(level = "debug"))]
    pub async fn reload(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.loading.lock().await;
        let rows = run(&self.db, |conn| Ok(store::published(conn)?)).await?;
        self.install(&rows)
    }

    fn install(&self, rows: &[SigningKeyRow]) -> Result<(), KeyError> {
        if fingerprint(rows) == self.current.load().fingerprint {
            return Ok(());
        }
        let set = KeySet::build(rows, self.master.as_deref())?;
        tracing::info!(keys = %set.fingerprint, "loaded a new key set");
        self.current.store(Arc::new(set));
        Ok(())
    }
}

async fn run<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut PgConnection) -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    db.run(f).await
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

    #[test]
    fn every_algorithm_generates_a_usable_key() {
        for algorithm in SigningAlgorithm::ALL {
            let key = generate(algorithm).unwrap();
            let enc = encoding_key(algorithm, &key.pkcs8).unwrap();
            let mut header = jsonwebtoken::Header::new(algorithm.jwt_algorithm());
            header.kid = Some(key.kid.clone());
            let token = jsonwebtoken::encode(
                &header,
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                &enc,
            )
            .unwrap();
            let jwk: Jwk = serde_json::from_value(key.public_jwk.clone()).unwrap();
            let dec = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(algorithm.jwt_algorithm());
            validation.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &validation).unwrap();
            assert_eq!(key.public_jwk["use"], "sig");
            assert_eq!(key.public_jwk["alg"], algorithm.as_str());
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
        }
    }

    /// A key set with one freshly generated signing key, as if loaded from the database.
    pub(crate) fn test_key_set(algorithm: SigningAlgorithm) -> KeySet {
        KeySet::ephemeral(algorithm).unwrap()
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("es256".parse(), Ok(SigningAlgorithm::Es256));
        assert_eq!("EdDSA".parse(), Ok(SigningAlgorithm::EdDsa));
        assert_eq!("RS256".parse(), Ok(SigningAlgorithm::Rs256));
        assert!("HS256".parse::<SigningAlgorithm>().is_err());
        assert!("none".parse::<SigningAlgorithm>().is_err());
    }
}
