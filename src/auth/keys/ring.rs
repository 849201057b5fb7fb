//! What requests read: the published keys as an immutable [`KeySet`] snapshot (with
//! the JWKS document and a cache of verified tokens), swapped whole by the [`KeyRing`]
//! when the stored keys change.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::Utc;
use diesel::PgConnection;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::generate::{encoding_key, generate, open_private_key};
use super::life_cycle::{check_master_key, maintain, rotate_now, RecordRotation, Rotation};
use super::{KeyError, KeyPolicy};
use crate::auth::master_key::MasterKey;
use crate::domain::{KeyState, SigningAlgorithm};
use crate::store::signing_keys::{self as store, SigningKeyRow};
use crate::store::Db;
use tessera_token::AccessClaims;

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
    verified: std::sync::RwLock<HashMap<Box<str>, AccessClaims>>,
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
            algorithm,
            state: KeyState::Current,
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
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    /// The claims of a token these keys verified before, if remembered.
    pub(crate) fn verified(&self, token: &str) -> Option<AccessClaims> {
        self.verified
            .read()
            .expect("verified-token cache lock")
            .get(token)
            .cloned()
    }

    pub(crate) fn remember_verified(&self, token: &str, claims: AccessClaims) {
        let mut cache = self.verified.write().expect("verified-token cache lock");
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.clear();
        }
        cache.insert(token.into(), claims);
    }

    /// The published keys; the signing key too when `master` is given.
    fn build(rows: &[SigningKeyRow], master: Option<&MasterKey>) -> Result<Self, KeyError> {
        let mut signing = None;
        let mut verifying = HashMap::with_capacity(rows.len());
        for row in rows {
            let algorithm = row.algorithm;
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
            if let (KeyState::Current, Some(master)) = (row.state, master) {
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
    pub(crate) async fn public_only(db: Db, policy: KeyPolicy) -> Result<Self, KeyError> {
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

    /// Runs the life-cycle step and reloads the key set if the published keys changed.
    #[tracing::instrument(name = "keys.tick", level = "debug", skip_all, err(level = "debug"))]
    pub(crate) async fn tick(&self) -> Result<(), KeyError> {
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
    pub(crate) async fn reload(&self) -> Result<(), KeyError> {
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
        super::signer::forget();
        Ok(())
    }
}

async fn run<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut PgConnection) -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    db.run(f).await
}
