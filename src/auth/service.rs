//! Opening a [`Tessera`] handle, and what it reports about itself (readiness, the
//! metrics sample).

use std::sync::Arc;

use super::clients::Directory;
use super::keys::{KeyError, KeyPolicy, KeyRing, KeySet};
use super::master_key::{MasterKey, MasterKeyError};
use super::passwords::{HashError, PasswordHasher};
use super::refresh_mac::RefreshMac;
use super::users::Profiles;
use super::{Parts, Tessera};
use crate::config::{MasterKeySource, Settings};
use crate::metrics::Metrics;
use crate::store::denylist::{Denylist, RedisUnavailable};
use crate::store::rotation::RotationPools;
use crate::store::throttle::Throttle;
use crate::store::{self, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(
        "no master key is configured (TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE) and the \
         development key file {path} does not exist, but the database holds signing keys \
         encrypted under a master key; set it (or run from the directory that holds \
         .tessera/master.key). Nothing was changed."
    )]
    MissingMasterKey { path: String },
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("redis: {0}")]
    Redis(#[from] RedisUnavailable),
    #[error("password hashing: {0}")]
    Hash(#[from] HashError),
}

/// The keys derived from the master key, which only [`Tessera::open`] has.
struct Derived {
    refresh_mac: RefreshMac,
    flow_keys: super::authorize::FlowKeys,
}

impl Tessera {
    /// Opens everything a request needs: creates and migrates the database as needed,
    /// checks the master key against the stored keys, ensures a signing key exists and
    /// loads the key set, starts the bcrypt pool and connects to Redis (which may be
    /// down: calls that need it answer 503 until it is back).
    #[tracing::instrument(name = "tessera.open", skip_all)]
    pub async fn open(settings: Settings) -> Result<Self, OpenError> {
        super::keys::signer::install();
        let db = open_database(&settings).await?;
        let master = load_master_key(&settings, &db).await?;
        let derived = Derived {
            refresh_mac: RefreshMac::from_master(&master),
            flow_keys: super::authorize::FlowKeys::from_master(&master),
        };
        let keys = KeyRing::start(db.clone(), master, key_policy(&settings)).await?;
        let tessera = Self::assemble(settings, db, keys, Some(derived)).await?;
        super::background::report_redis_at_start(&tessera.settings, &tessera.denylist).await;
        Ok(tessera)
    }

    /// Like [`Tessera::open`] without the master key: for the command line's user,
    /// client, audit and `keys list` commands, which an operator may run from anywhere.
    /// Tokens verify with the published keys; nothing can be signed and no key can
    /// change through this handle (that answers [`KeyError::PublicOnly`]).
    #[tracing::instrument(name = "tessera.open_admin", skip_all)]
    pub async fn open_admin(settings: Settings) -> Result<Self, OpenError> {
        super::keys::signer::install();
        let db = open_database(&settings).await?;
        let keys = KeyRing::public_only(db.clone(), key_policy(&settings)).await?;
        Self::assemble(settings, db, keys, None).await
    }

    async fn assemble(
        settings: Settings,
        db: Db,
        keys: KeyRing,
        derived: Option<Derived>,
    ) -> Result<Self, OpenError> {
        let (refresh_mac, flow_keys) = match derived {
            Some(d) => (Some(d.refresh_mac), Some(d.flow_keys)),
            None => (None, None),
        };
        let passwords = PasswordHasher::new(
            settings.passwords.bcrypt_cost,
            settings.passwords.bcrypt_max_concurrency,
            settings.passwords.bcrypt_nice,
        )
        .await?;
        let denylist = Denylist::new(&settings.redis.endpoint, &settings.redis.prefix)?;
        let throttle = Throttle::new(denylist.connection(), &settings.redis.prefix);
        let metrics = Metrics::new();
        let rotation = RotationPools::new(
            &settings.database.url,
            settings.database.pool_size,
            settings.http.workers,
            settings.database.pool_timeout,
            metrics.rotations_per_statement.clone(),
        );
        Ok(Self(Arc::new(Parts {
            rotation,
            clients: Directory::new(db.clone()),
            profiles: Profiles::new(db.clone()),
            settings,
            db,
            denylist,
            denylist_sync: Default::default(),
            feed: Default::default(),
            throttle,
            keys,
            refresh_mac,
            flow_keys,
            passwords,
            metrics,
        })))
    }

    /// Creates and migrates the database, and nothing else (`tessera migrate`).
    pub async fn migrate(settings: &Settings) -> Result<(), StoreError> {
        open_database(settings).await.map(drop)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Ends every revocation stream: the server is stopping, and they would hold it up
    /// until its shutdown timeout.
    pub fn close_streams(&self) {
        self.0.feed.close();
    }

    /// The published keys as they are now: the JWKS document and its ETag.
    pub fn key_set(&self) -> Arc<KeySet> {
        self.0.keys.snapshot()
    }
}

async fn open_database(settings: &Settings) -> Result<Db, StoreError> {
    let url = settings.database.url.clone();
    tokio::task::spawn_blocking(move || store::prepare_database(&url))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    Ok(Db::new(
        &settings.database.url,
        settings.database.pool_size,
        settings.database.pool_timeout,
    ))
}

/// Loads the master key. The development key file is only ever created for a database
/// that holds no signing keys yet: a new key could never open the stored ones.
async fn load_master_key(settings: &Settings, db: &Db) -> Result<MasterKey, OpenError> {
    if let MasterKeySource::DevelopmentFile(path) = &settings.keys.master_key {
        let sealed = db.run(store::signing_keys::count_sealed).await?;
        if !path.exists() && sealed > 0 {
            return Err(OpenError::MissingMasterKey {
                path: path.display().to_string(),
            });
        }
    }
    Ok(MasterKey::load(&settings.keys.master_key)?)
}

fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        algorithm: settings.keys.algorithm,
        rotation_interval: settings.keys.rotation_interval,
        publish_ahead: settings.keys.publish_ahead,
    }
}

/// What `/readyz` reports: each dependency answered within the limit.
pub(crate) struct Readiness {
    pub postgres: bool,
    pub redis: bool,
}

impl Tessera {
    /// Asks PostgreSQL and Redis, each within `limit`, at the same time.
    pub(crate) async fn readiness(&self, limit: std::time::Duration) -> Readiness {
        let postgres = tokio::time::timeout(
            limit,
            self.db.run(|conn| {
                use diesel::connection::SimpleConnection;
                conn.batch_execute("SELECT 1").map_err(StoreError::from)
            }),
        );
        let redis = tokio::time::timeout(limit, self.denylist.ping());
        let (postgres, redis) = tokio::join!(postgres, redis);
        Readiness {
            postgres: matches!(postgres, Ok(Ok(()))),
            redis: matches!(redis, Ok(Ok(()))),
        }
    }

    /// The Prometheus text exposition, with the gauges sampled now.
    pub(crate) fn render_metrics(&self) -> Vec<u8> {
        let (waiting, running) = self.passwords.load();
        let pool = self.db.state();
        let sample = crate::metrics::Sample {
            bcrypt_waiting: waiting,
            bcrypt_running: running,
            bcrypt_total: self.passwords.jobs_total(),
            db_in_use: pool.connections - pool.idle_connections,
            db_idle: pool.idle_connections,
            db_max: self.db.max_size(),
            db_waiting: self.db.waiting(),
        };
        self.metrics.render(&sample)
    }
}
