//! The settings grouped by concern. Each group reads its own variables: the name, the
//! default and the parser of every variable are written once, in its group's `read`.

use std::net::SocketAddr;
use std::time::Duration;

use super::parse::{self, duration_within, number_within};
use super::secrets::MasterKeySource;
use super::{ConfigError, Source};
use crate::domain::{RedisEndpoint, SigningAlgorithm, MAX_ACCESS_TOKEN_TTL, MIN_ACCESS_TOKEN_TTL};

const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The number of cores, the default of every "how many at once" setting.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[derive(Clone, Debug)]
pub struct Database {
    pub url: String,
    pub pool_size: u32,
    pub pool_timeout: Duration,
}

impl Database {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            url: src.read(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tessera".to_owned(),
                parse::postgres_url,
            )?,
            pool_size: src.read("TESSERA_DATABASE_POOL_SIZE", 16, |v| {
                number_within(v, 1, 512)
            })?,
            pool_timeout: src.read("TESSERA_DATABASE_POOL_TIMEOUT", secs(2), |v| {
                duration_within(v, Duration::from_millis(50), secs(60))
            })?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Redis {
    /// One server, a Cluster or a Sentinel-watched master (`REDIS_URL`, and
    /// `TESSERA_REDIS_CLUSTER_NODES` for a Cluster).
    pub endpoint: RedisEndpoint,
    /// Prefix of every key, so several deployments can share one Redis.
    pub prefix: String,
}

impl Redis {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        let url = src.read(
            "REDIS_URL",
            RedisEndpoint::Single("redis://127.0.0.1:6379".to_owned()),
            parse::redis_url,
        )?;
        let endpoint = src.read("TESSERA_REDIS_CLUSTER_NODES", url.clone(), |v| {
            parse::redis_cluster_nodes(v, &url)
        })?;
        Ok(Self {
            endpoint,
            prefix: src.read(
                "TESSERA_REDIS_PREFIX",
                "tessera:".to_owned(),
                parse::redis_prefix,
            )?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Http {
    pub bind: SocketAddr,
    /// A separate listener for `/metrics`; when set, the public one answers 404 there.
    pub metrics_bind: Option<SocketAddr>,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
}

impl Http {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: src.read("TESSERA_BIND", ([127, 0, 0, 1], 8080).into(), |v| {
                parse::socket_address(v, "127.0.0.1:8080")
            })?,
            metrics_bind: src.read("TESSERA_METRICS_BIND", None, |v| {
                parse::socket_address(v, "127.0.0.1:9100").map(Some)
            })?,
            workers: src.read("TESSERA_WORKERS", cores(), |v| number_within(v, 1, 256))?,
            max_body_bytes: src.read("TESSERA_MAX_BODY_BYTES", 16 * 1024, |v| {
                number_within(v, 1024, 1024 * 1024)
            })?,
            request_timeout: src.read("TESSERA_REQUEST_TIMEOUT", secs(30), |v| {
                duration_within(v, secs(1), secs(600))
            })?,
            cors_origins: src.read("TESSERA_CORS_ORIGINS", Vec::new(), parse::origins)?,
            trust_forwarded_for: src.read("TESSERA_TRUST_FORWARDED_FOR", false, parse::boolean)?,
        })
    }
}

/// Lifetimes of what Tessera issues.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub session_max_ttl: Duration,
    /// Re-presenting a just-rotated refresh token within this window returns the same
    /// successor instead of revoking the session.
    pub refresh_reuse_grace: Duration,
}

impl Tokens {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        let tokens = Self {
            access_ttl: src.read("TESSERA_ACCESS_TOKEN_TTL", secs(300), |v| {
                duration_within(v, MIN_ACCESS_TOKEN_TTL, MAX_ACCESS_TOKEN_TTL)
            })?,
            refresh_idle_ttl: src.read("TESSERA_REFRESH_IDLE_TTL", days(14), |v| {
                duration_within(v, secs(60), days(400))
            })?,
            session_max_ttl: src.read("TESSERA_SESSION_MAX_TTL", days(30), |v| {
                duration_within(v, secs(60), days(400))
            })?,
            refresh_reuse_grace: src.read("TESSERA_REFRESH_REUSE_GRACE", secs(10), |v| {
                duration_within(v, Duration::ZERO, secs(120))
            })?,
        };
        if tokens.session_max_ttl < tokens.refresh_idle_ttl {
            return Err(ConfigError::new(
                "TESSERA_SESSION_MAX_TTL",
                "must not be shorter than TESSERA_REFRESH_IDLE_TTL",
            ));
        }
        Ok(tokens)
    }
}

/// Signing keys: their algorithm, life cycle and publication.
#[derive(Clone, Debug)]
pub struct Keys {
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotation_interval: Duration,
    /// How long a new key is published before it signs.
    pub publish_ahead: Duration,
    /// How often each instance runs the key life cycle and picks up key changes.
    pub refresh_interval: Duration,
    pub jwks_max_age: Duration,
    pub master_key: MasterKeySource,
}

impl Keys {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        let keys = Self {
            algorithm: src.read("TESSERA_SIGNING_ALG", SigningAlgorithm::Es256, |v| {
                v.parse()
            })?,
            rotation_interval: src.read("TESSERA_KEY_ROTATION_INTERVAL", days(30), |v| {
                duration_within(v, secs(2), days(3650))
            })?,
            publish_ahead: src.read("TESSERA_KEY_PUBLISH_AHEAD", secs(3600), |v| {
                duration_within(v, secs(1), days(30))
            })?,
            refresh_interval: src.read("TESSERA_KEY_REFRESH_INTERVAL", secs(10), |v| {
                duration_within(v, Duration::from_millis(100), secs(3600))
            })?,
            jwks_max_age: src.read("TESSERA_JWKS_MAX_AGE", secs(300), |v| {
                duration_within(v, Duration::ZERO, secs(86_400))
            })?,
            master_key: MasterKeySource::read(src)?,
        };
        if keys.publish_ahead <= keys.jwks_max_age {
            return Err(ConfigError::new(
                "TESSERA_KEY_PUBLISH_AHEAD",
                "must be longer than TESSERA_JWKS_MAX_AGE, so verifiers see a key before it signs",
            ));
        }
        if keys.rotation_interval <= keys.publish_ahead {
            return Err(ConfigError::new(
                "TESSERA_KEY_ROTATION_INTERVAL",
                "must be longer than TESSERA_KEY_PUBLISH_AHEAD",
            ));
        }
        Ok(keys)
    }
}

/// Password hashing and the rule for new passwords.
#[derive(Clone, Debug)]
pub struct Passwords {
    pub bcrypt_cost: u32,
    /// bcrypt threads, i.e. hashes in flight at once.
    pub bcrypt_max_concurrency: usize,
    /// CPU priority (nice) of the bcrypt threads.
    pub bcrypt_nice: i32,
    pub min_length: usize,
}

impl Passwords {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            bcrypt_cost: src.read("TESSERA_BCRYPT_COST", 12, |v| number_within(v, 4, 31))?,
            bcrypt_max_concurrency: src.read("TESSERA_BCRYPT_MAX_CONCURRENCY", cores(), |v| {
                number_within(v, 1, 1024)
            })?,
            bcrypt_nice: src.read("TESSERA_BCRYPT_NICE", 10, |v| number_within(v, 0, 19))?,
            min_length: src.read("TESSERA_PASSWORD_MIN_LENGTH", 8, |v| {
                number_within(v, 1, 72)
            })?,
        })
    }
}

/// Brute-force protection of password checks, counted in Redis across instances.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Failures are counted over this window (per account and per client IP).
    pub window: Duration,
    /// After this many failures for an account, each further attempt must wait,
    /// twice as long each time (1 s, 2 s, 4 s, ...).
    pub delay_after: u32,
    /// The longest of those waits.
    pub max_delay: Duration,
    /// After this many failures the account is locked out for `lockout`.
    pub lockout_after: u32,
    pub lockout: Duration,
    /// Failures from one client IP over the window before it must wait out the window.
    pub per_ip: u32,
    /// Failures for an account from every source that has not logged in to it
    /// recently, over the window, after which such checks are spaced out: distributed
    /// guessing slows down, and nobody is ever locked out by it.
    pub account_delay_after: u32,
    /// The spacing: at most one such check per this long (and one in flight).
    pub account_delay: Duration,
}

impl LoginLimits {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        let limits = Self {
            window: src.read("TESSERA_LOGIN_FAILURE_WINDOW", secs(900), |v| {
                duration_within(v, secs(1), secs(86_400))
            })?,
            delay_after: src.read("TESSERA_LOGIN_DELAY_AFTER", 3, |v| {
                number_within(v, 1, 1000)
            })?,
            max_delay: src.read("TESSERA_LOGIN_MAX_DELAY", secs(60), |v| {
                duration_within(v, secs(1), secs(3600))
            })?,
            lockout_after: src.read("TESSERA_LOGIN_LOCKOUT_AFTER", 10, |v| {
                number_within(v, 1, 10_000)
            })?,
            lockout: src.read("TESSERA_LOGIN_LOCKOUT", secs(900), |v| {
                duration_within(v, secs(1), secs(86_400))
            })?,
            per_ip: src.read("TESSERA_LOGIN_IP_LIMIT", 100, |v| {
                number_within(v, 1, 1_000_000)
            })?,
            account_delay_after: src.read("TESSERA_LOGIN_ACCOUNT_DELAY_AFTER", 50, |v| {
                number_within(v, 1, 1_000_000)
            })?,
            account_delay: src.read("TESSERA_LOGIN_ACCOUNT_DELAY", secs(1), |v| {
                duration_within(v, Duration::from_millis(100), secs(10))
            })?,
        };
        if limits.lockout_after < limits.delay_after {
            return Err(ConfigError::new(
                "TESSERA_LOGIN_LOCKOUT_AFTER",
                "must be at least TESSERA_LOGIN_DELAY_AFTER",
            ));
        }
        Ok(limits)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        match v.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{v}` is not one of: text, json")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Log {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `tessera=debug,actix_web=info`.
    pub filter: String,
}

impl Log {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            format: src.read("TESSERA_LOG_FORMAT", LogFormat::Text, |v| v.parse())?,
            filter: src.read("TESSERA_LOG", "info".to_owned(), parse::log_filter)?,
        })
    }
}

/// Tessera's own login pages (the authorization-code flow): the browser session and
/// the branding.
#[derive(Clone, Debug)]
pub struct LoginPage {
    /// How long a sign-in on the login page lasts (single sign-on across apps).
    pub session_ttl: Duration,
    /// The name shown on the pages.
    pub product_name: String,
    /// An image shown above the form (an absolute https URL, or http on loopback).
    pub logo_url: Option<String>,
    /// The colour of buttons and links, `#rgb` or `#rrggbb`.
    pub accent_color: String,
}

impl LoginPage {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            session_ttl: src.read("TESSERA_LOGIN_SESSION_TTL", secs(12 * 3600), |v| {
                duration_within(v, secs(60), days(30))
            })?,
            product_name: src.read(
                "TESSERA_LOGIN_PRODUCT_NAME",
                "Tessera".to_owned(),
                parse::display_name,
            )?,
            logo_url: src.read("TESSERA_LOGIN_LOGO_URL", None, |v| {
                parse::image_url(v).map(Some)
            })?,
            accent_color: src.read(
                "TESSERA_LOGIN_ACCENT_COLOR",
                "#2454d6".to_owned(),
                parse::css_hex_color,
            )?,
        })
    }
}

/// The revocation feed (`/v1/revocations/stream`).
#[derive(Clone, Debug)]
pub struct RevocationFeed {
    /// How often an idle stream says it is still complete (a `heartbeat` event): what
    /// keeps proxies from closing it and tells a subscriber it has not fallen behind.
    pub heartbeat: Duration,
}

impl RevocationFeed {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            // At most 10 s: well inside the verifiers' staleness bound (30 s by default).
            heartbeat: src.read("TESSERA_REVOCATION_HEARTBEAT", secs(5), |v| {
                duration_within(v, Duration::from_millis(100), secs(10))
            })?,
        })
    }
}
