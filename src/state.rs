//! Everything a request may need, built once at start-up and shared by all workers.

use actix_web::web::Bytes;

use crate::auth::keys::KeyRing;
use crate::auth::passwords::PasswordHasher;
use crate::auth::revocation::DenylistSync;
use crate::config::Settings;
use crate::store::denylist::Denylist;
use crate::store::Db;

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub denylist: Denylist,
    pub denylist_sync: DenylistSync,
    pub throttle: crate::store::throttle::Throttle,
    pub clients: crate::auth::clients::Directory,
    pub profiles: crate::auth::users::Profiles,
    pub keys: KeyRing,
    pub passwords: PasswordHasher,
    pub metrics: crate::metrics::Metrics,
    /// RFC 8414 metadata, serialised once.
    pub metadata: Bytes,
    /// The OpenAPI document, serialised once.
    pub openapi: Bytes,
    /// Paths of the OpenAPI document with the methods each allows: every other method
    /// gets a 405 with an `Allow` header.
    pub api_paths: Vec<(String, String)>,
}
