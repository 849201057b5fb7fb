//! Typed settings, read once at start-up from the environment (12-factor) and,
//! optionally, a TOML file named by `TESSERA_CONFIG_FILE`. The environment wins over
//! the file. Every value is validated here; a bad one stops start-up with an error that
//! names the variable, so the rest of the program never re-checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::auth::keys::SigningAlgorithm;

/// A configuration value that could not be used. `variable` is the environment name
/// (the TOML key is the same name, lower-cased, without the `TESSERA_` prefix).
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &str, message: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the master key that encrypts private signing keys comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// `TESSERA_MASTER_KEY`: 32 bytes, base64 (standard or URL-safe) or 64 hex digits.
    Inline(SecretString),
    /// `TESSERA_MASTER_KEY_FILE` set explicitly: the file must exist.
    File(PathBuf),
    /// Nothing configured: a development key file, generated on first start.
    DevelopmentFile(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline([redacted])"),
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::DevelopmentFile(path) => write!(f, "DevelopmentFile({})", path.display()),
        }
    }
}

/// The first administrator, created on a first start (no users yet).
#[derive(Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BootstrapAdmin {{ username: {:?}, password: [redacted] }}",
            self.username
        )
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub database_pool_size: u32,
    pub database_pool_timeout: Duration,
    pub redis_url: String,
    pub redis_prefix: String,
    pub bind: SocketAddr,
    /// A separate listener for `/metrics`; when set, the public one answers 404 there.
    pub metrics_bind: Option<SocketAddr>,
    pub workers: usize,
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub session_max_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub bcrypt_cost: u32,
    pub bcrypt_max_concurrency: usize,
    pub bcrypt_nice: i32,
    pub password_min_length: usize,
    pub signing_algorithm: SigningAlgorithm,
    pub key_refresh_interval: Duration,
    pub key_rotation_interval: Duration,
    pub key_publish_ahead: Duration,
    pub jwks_max_age: Duration,
    pub master_key: MasterKeySource,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub max_body_bytes: usize,
    pub allow_registration: bool,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    pub cors_origins: Vec<String>,
    pub login_limits: LoginLimits,
    pub trust_forwarded_for: bool,
    pub request_timeout: Duration,
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

/// No access token lives longer than this, whatever the configuration or a client's
/// override: revocations and retired keys are kept for this long, so that lowering a
/// lifetime or deleting a client never lets an older, longer-lived token slip through.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(86_400);

/// Where the development master key lives, relative to the working directory, when no
/// master key is configured.
pub const DEVELOPMENT_MASTER_KEY_FILE: &str = ".tessera/master.key";

/// The names of every variable Tessera reads, for `check-config` and the README.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "TESSERA_CONFIG_FILE",
    "TESSERA_DATABASE_POOL_SIZE",
    "TESSERA_DATABASE_POOL_TIMEOUT",
    "TESSERA_REDIS_PREFIX",
    "TESSERA_BIND",
    "TESSERA_METRICS_BIND",
    "TESSERA_WORKERS",
    "TESSERA_ISSUER",
    "TESSERA_ACCESS_TOKEN_TTL",
    "TESSERA_REFRESH_IDLE_TTL",
    "TESSERA_SESSION_MAX_TTL",
    "TESSERA_REFRESH_REUSE_GRACE",
    "TESSERA_BCRYPT_COST",
    "TESSERA_BCRYPT_MAX_CONCURRENCY",
    "TESSERA_BCRYPT_NICE",
    "TESSERA_PASSWORD_MIN_LENGTH",
    "TESSERA_SIGNING_ALG",
    "TESSERA_KEY_REFRESH_INTERVAL",
    "TESSERA_KEY_ROTATION_INTERVAL",
    "TESSERA_KEY_PUBLISH_AHEAD",
    "TESSERA_JWKS_MAX_AGE",
    "TESSERA_MASTER_KEY",
    "TESSERA_MASTER_KEY_FILE",
    "TESSERA_LOG_FORMAT",
    "TESSERA_LOG",
    "TESSERA_MAX_BODY_BYTES",
    "TESSERA_ALLOW_REGISTRATION",
    "TESSERA_BOOTSTRAP_ADMIN",
    "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE",
    "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
    "TESSERA_CORS_ORIGINS",
    "TESSERA_LOGIN_FAILURE_WINDOW",
    "TESSERA_LOGIN_DELAY_AFTER",
    "TESSERA_LOGIN_MAX_DELAY",
    "TESSERA_LOGIN_LOCKOUT_AFTER",
    "TESSERA_LOGIN_LOCKOUT",
    "TESSERA_LOGIN_IP_LIMIT",
    "TESSERA_LOGIN_ACCOUNT_DELAY_AFTER",
    "TESSERA_LOGIN_ACCOUNT_DELAY",
    "TESSERA_TRUST_FORWARDED_FOR",
    "TESSERA_REQUEST_TIMEOUT",
];

/// Where raw values come from: the process environment over an optional TOML file.
pub struct Source {
    values: HashMap<String, String>,
    /// Every `TESSERA_*` name set in the process environment, read or not.
    present: Vec<String>,
    /// The names the settings asked for: whatever [`Settings::from_source`] reads is a
    /// known variable, so an addition there is known here without a second list.
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Source {
    /// The process environment, over the TOML file named by `TESSERA_CONFIG_FILE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let present: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with("TESSERA_"))
            .collect();
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(name, _)| VARIABLES.contains(&name.as_str()))
            .collect();
        let mut values = match env.get("TESSERA_CONFIG_FILE") {
            Some(path) => read_toml_file(path)?,
            None => HashMap::new(),
        };
        values.extend(env);
        let source = Self {
            values,
            present,
            asked: Default::default(),
        };
        source
            .asked
            .borrow_mut()
            .insert("TESSERA_CONFIG_FILE".to_owned());
        Ok(source)
    }

    /// Explicit values only (tests and embedding); nothing is read from the process.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let present = values
            .keys()
            .filter(|name| name.starts_with("TESSERA_"))
            .cloned()
            .collect();
        Self {
            values,
            present,
            asked: Default::default(),
        }
    }

    /// `TESSERA_*` variables that are set but that no setting reads (a typo, or a
    /// variable of another version), each with the closest known name if one is near.
    /// Call it after [`Settings::from_source`]. `TESSERA_TEST_*` (the test suite's own
    /// variables) are left out.
    pub fn unknown_variables(&self) -> Vec<UnknownVariable> {
        let asked = self.asked.borrow();
        let mut unknown: Vec<UnknownVariable> = self
            .present
            .iter()
            .filter(|name| !asked.contains(name.as_str()) && !name.starts_with("TESSERA_TEST_"))
            .map(|name| UnknownVariable {
                name: name.clone(),
                did_you_mean: asked
                    .iter()
                    .map(|known| (edit_distance(name, known), known))
                    .filter(|(distance, _)| *distance <= 3)
                    .min()
                    .map(|(_, known)| known.clone()),
            })
            .collect();
        unknown.sort_by(|a, b| a.name.cmp(&b.name));
        unknown
    }

    /// The value as given (a password may begin or end with spaces).
    fn get_untrimmed(&self, name: &str) -> Option<&str> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.values.get(name).map(String::as_str)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw).map_err(|message| ConfigError::new(name, message)),
        }
    }
}

/// A `TESSERA_*` variable that is set but read by nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub did_you_mean: Option<String>,
}

impl std::fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a Tessera variable and is ignored", self.name)?;
        if let Some(known) = &self.did_you_mean {
            write!(f, " (did you mean {known}?)")?;
        }
        Ok(())
    }
}

/// Levenshtein distance, for suggesting the variable a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn read_toml_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let variable = "TESSERA_CONFIG_FILE";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(variable, format!("cannot read {path}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigError::new(variable, format!("{path} is not valid TOML: {e}")))?;
    let mut values = HashMap::new();
    for (key, value) in table {
        let name = toml_key_to_variable(&key);
        if !VARIABLES.contains(&name.as_str()) {
            return Err(ConfigError::new(
                variable,
                format!("{path}: unknown key `{key}`"),
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(ConfigError::new(
                    &name,
                    format!("{path}: `{key}` must be a string, number or boolean, not {other}"),
                ))
            }
        };
        values.insert(name, text);
    }
    Ok(values)
}

/// `database_url` -> `DATABASE_URL`; `issuer` -> `TESSERA_ISSUER`.
fn toml_key_to_variable(key: &str) -> String {
    let upper = key.to_ascii_uppercase();
    if upper == "DATABASE_URL" || upper == "REDIS_URL" {
        upper
    } else {
        format!("TESSERA_{upper}")
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Source::from_env()?)
    }

    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let bind = src.parse("TESSERA_BIND", "127.0.0.1:8080".parse().unwrap(), |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("`{v}` is not an address like 127.0.0.1:8080"))
        })?;
        let default_issuer = format!("http://{bind}");
        let issuer = src.parse("TESSERA_ISSUER", default_issuer, parse_issuer)?;

        let access_token_ttl =
            src.parse("TESSERA_ACCESS_TOKEN_TTL", Duration::from_secs(300), |v| {
                parse_duration_within(v, Duration::from_secs(10), MAX_ACCESS_TOKEN_TTL)
            })?;
        let refresh_idle_ttl = src.parse(
            "TESSERA_REFRESH_IDLE_TTL",
            Duration::from_secs(14 * 86_400),
            |v| {
                parse_duration_within(
                    v,
                    Duration::from_secs(60),
                    Duration::from_secs(400 * 86_400),
                )
            },
        )?;
        let session_max_ttl = src.parse(
            "TESSERA_SESSION_MAX_TTL",
            Duration::from_secs(30 * 86_400),
            |v| {
                parse_duration_within(
                    v,
                    Duration::from_secs(60),
                    Duration::from_secs(400 * 86_400),
                )
            },
        )?;
        if session_max_ttl < refresh_idle_ttl {
            return Err(ConfigError::new(
                "TESSERA_SESSION_MAX_TTL",
                "must not be shorter than TESSERA_REFRESH_IDLE_TTL",
            ));
        }
        let refresh_reuse_grace = src.parse(
            "TESSERA_REFRESH_REUSE_GRACE",
            Duration::from_secs(10),
            |v| parse_duration_within(v, Duration::ZERO, Duration::from_secs(120)),
        )?;

        let jwks_max_age = src.parse("TESSERA_JWKS_MAX_AGE", Duration::from_secs(300), |v| {
            parse_duration_within(v, Duration::ZERO, Duration::from_secs(86_400))
        })?;
        let key_publish_ahead = src.parse(
            "TESSERA_KEY_PUBLISH_AHEAD",
            Duration::from_secs(3600),
            |v| parse_duration_within(v, Duration::from_secs(1), Duration::from_secs(30 * 86_400)),
        )?;
        if key_publish_ahead <= jwks_max_age {
            return Err(ConfigError::new(
                "TESSERA_KEY_PUBLISH_AHEAD",
                "must be longer than TESSERA_JWKS_MAX_AGE, so verifiers see a key before it signs",
            ));
        }
        let key_rotation_interval = src.parse(
            "TESSERA_KEY_ROTATION_INTERVAL",
            Duration::from_secs(30 * 86_400),
            |v| {
                parse_duration_within(
                    v,
                    Duration::from_secs(2),
                    Duration::from_secs(3650 * 86_400),
                )
            },
        )?;
        if key_rotation_interval <= key_publish_ahead {
            return Err(ConfigError::new(
                "TESSERA_KEY_ROTATION_INTERVAL",
                "must be longer than TESSERA_KEY_PUBLISH_AHEAD",
            ));
        }

        let master_key = match (
            src.get("TESSERA_MASTER_KEY"),
            src.get("TESSERA_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "TESSERA_MASTER_KEY",
                    "set either TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, not both",
                ))
            }
            (Some(key), None) => {
                if crate::auth::master_key::decode_key(key).is_none() {
                    return Err(ConfigError::new(
                        "TESSERA_MASTER_KEY",
                        "must be 32 bytes, as base64 or 64 hex digits \
                         (`tessera keys generate-master-key` prints one)",
                    ));
                }
                MasterKeySource::Inline(SecretString::from(key.to_owned()))
            }
            (None, Some(path)) => MasterKeySource::File(PathBuf::from(path)),
            // Absolute, so messages say where it was looked for; it depends on the
            // working directory, which is why it is for development only.
            (None, None) => MasterKeySource::DevelopmentFile(
                std::env::current_dir()
                    .unwrap_or_default()
                    .join(DEVELOPMENT_MASTER_KEY_FILE),
            ),
        };

        let bootstrap_admin = bootstrap_admin(src)?;
        let login_limits = LoginLimits {
            window: src.parse(
                "TESSERA_LOGIN_FAILURE_WINDOW",
                Duration::from_secs(900),
                |v| parse_duration_within(v, Duration::from_secs(1), Duration::from_secs(86_400)),
            )?,
            delay_after: src.parse("TESSERA_LOGIN_DELAY_AFTER", 3, |v| {
                parse_number_within(v, 1, 1000)
            })?,
            max_delay: src.parse("TESSERA_LOGIN_MAX_DELAY", Duration::from_secs(60), |v| {
                parse_duration_within(v, Duration::from_secs(1), Duration::from_secs(3600))
            })?,
            lockout_after: src.parse("TESSERA_LOGIN_LOCKOUT_AFTER", 10, |v| {
                parse_number_within(v, 1, 10_000)
            })?,
            lockout: src.parse("TESSERA_LOGIN_LOCKOUT", Duration::from_secs(900), |v| {
                parse_duration_within(v, Duration::from_secs(1), Duration::from_secs(86_400))
            })?,
            per_ip: src.parse("TESSERA_LOGIN_IP_LIMIT", 100, |v| {
                parse_number_within(v, 1, 1_000_000)
            })?,
            account_delay_after: src.parse("TESSERA_LOGIN_ACCOUNT_DELAY_AFTER", 50, |v| {
                parse_number_within(v, 1, 1_000_000)
            })?,
            account_delay: src.parse(
                "TESSERA_LOGIN_ACCOUNT_DELAY",
                Duration::from_secs(1),
                |v| parse_duration_within(v, Duration::from_millis(100), Duration::from_secs(10)),
            )?,
        };
        if login_limits.lockout_after < login_limits.delay_after {
            return Err(ConfigError::new(
                "TESSERA_LOGIN_LOCKOUT_AFTER",
                "must be at least TESSERA_LOGIN_DELAY_AFTER",
            ));
        }

        Ok(Self {
            database_url: src.parse(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tessera".to_owned(),
                parse_postgres_url,
            )?,
            database_pool_size: src.parse("TESSERA_DATABASE_POOL_SIZE", 16, |v| {
                parse_number_within(v, 1, 512)
            })?,
            database_pool_timeout: src.parse(
                "TESSERA_DATABASE_POOL_TIMEOUT",
                Duration::from_secs(2),
                |v| parse_duration_within(v, Duration::from_millis(50), Duration::from_secs(60)),
            )?,
            redis_url: src.parse(
                "REDIS_URL",
                "redis://127.0.0.1:6379".to_owned(),
                parse_redis_url,
            )?,
            redis_prefix: src.parse("TESSERA_REDIS_PREFIX", "tessera:".to_owned(), |v| {
                if v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
                    Ok(v.to_owned())
                } else {
                    Err("must be at most 64 visible ASCII characters".to_owned())
                }
            })?,
            bind,
            metrics_bind: src.parse("TESSERA_METRICS_BIND", None, |v| {
                v.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| format!("`{v}` is not an address like 127.0.0.1:9100"))
            })?,
            workers: src.parse("TESSERA_WORKERS", cores, |v| parse_number_within(v, 1, 256))?,
            issuer,
            access_token_ttl,
            refresh_idle_ttl,
            session_max_ttl,
            refresh_reuse_grace,
            bcrypt_cost: src.parse("TESSERA_BCRYPT_COST", 12, |v| parse_number_within(v, 4, 31))?,
            bcrypt_max_concurrency: src.parse("TESSERA_BCRYPT_MAX_CONCURRENCY", cores, |v| {
                parse_number_within(v, 1, 1024)
            })?,
            bcrypt_nice: src.parse("TESSERA_BCRYPT_NICE", 10, |v| parse_number_within(v, 0, 19))?,
            password_min_length: src.parse("TESSERA_PASSWORD_MIN_LENGTH", 8, |v| {
                parse_number_within(v, 1, 72)
            })?,
            signing_algorithm: src.parse("TESSERA_SIGNING_ALG", SigningAlgorithm::Es256, |v| {
                v.parse()
            })?,
            key_refresh_interval: src.parse(
                "TESSERA_KEY_REFRESH_INTERVAL",
                Duration::from_secs(10),
                |v| parse_duration_within(v, Duration::from_millis(100), Duration::from_secs(3600)),
            )?,
            key_rotation_interval,
            key_publish_ahead,
            jwks_max_age,
            master_key,
            log_format: src.parse("TESSERA_LOG_FORMAT", LogFormat::Text, |v| {
                match v.to_ascii_lowercase().as_str() {
                    "text" => Ok(LogFormat::Text),
                    "json" => Ok(LogFormat::Json),
                    _ => Err(format!("`{v}` is not one of: text, json")),
                }
            })?,
            log_filter: src.parse("TESSERA_LOG", "info".to_owned(), parse_log_filter)?,
            max_body_bytes: src.parse("TESSERA_MAX_BODY_BYTES", 16 * 1024, |v| {
                parse_number_within(v, 1024, 1024 * 1024)
            })?,
            allow_registration: src.parse("TESSERA_ALLOW_REGISTRATION", false, parse_bool)?,
            bootstrap_admin,
            cors_origins: src.parse("TESSERA_CORS_ORIGINS", Vec::new(), parse_origins)?,
            login_limits,
            trust_forwarded_for: src.parse("TESSERA_TRUST_FORWARDED_FOR", false, parse_bool)?,
            request_timeout: src.parse(
                "TESSERA_REQUEST_TIMEOUT",
                Duration::from_secs(30),
                |v| parse_duration_within(v, Duration::from_secs(1), Duration::from_secs(600)),
            )?,
        })
    }

    /// A copy safe to print: passwords in the connection URLs are masked.
    pub fn redacted(&self) -> Settings {
        let mut shown = self.clone();
        shown.database_url = redact_url_password(&self.database_url);
        shown.redis_url = redact_url_password(&self.redis_url);
        shown
    }

    /// The `aud` value of Tessera's own API (`/v1/...`): its issuer identifier.
    pub fn own_audience(&self) -> &str {
        &self.issuer
    }
}

fn bootstrap_admin(src: &Source) -> Result<Option<BootstrapAdmin>, ConfigError> {
    let Some(username) = src.get("TESSERA_BOOTSTRAP_ADMIN") else {
        for orphan in [
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE",
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
        ] {
            if src.get(orphan).is_some() {
                return Err(ConfigError::new(
                    orphan,
                    "needs TESSERA_BOOTSTRAP_ADMIN (the username)",
                ));
            }
        }
        return Ok(None);
    };
    let password = match (
        src.get("TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE"),
        src.get_untrimmed("TESSERA_BOOTSTRAP_ADMIN_PASSWORD"),
    ) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE",
                    format!("{path}: {e}"),
                )
            })?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, Some(password)) => password.to_owned(),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
                "set either the password or the password file, not both",
            ))
        }
        (None, None) => return Err(ConfigError::new(
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE",
            "TESSERA_BOOTSTRAP_ADMIN needs a password file (or TESSERA_BOOTSTRAP_ADMIN_PASSWORD)",
        )),
    };
    Ok(Some(BootstrapAdmin {
        username: username.to_owned(),
        password: SecretString::from(password),
    }))
}

fn redact_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("[redacted]"));
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

fn parse_issuer(v: &str) -> Result<String, String> {
    // RFC 8414 §2: an https URL with no query or fragment (http is allowed for local use).
    let ok_scheme = v.starts_with("https://") || v.starts_with("http://");
    if !ok_scheme || v.contains(['?', '#']) || v.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "`{v}` is not an http(s) URL without query or fragment"
        ));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

/// Exact origins (`https://app.example.com`), comma-separated; never `*`.
fn parse_origins(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let scheme_ok = o.starts_with("https://") || o.starts_with("http://");
            let host = o.split_once("://").map(|(_, h)| h).unwrap_or_default();
            if scheme_ok && !host.is_empty() && !host.contains(['/', '*', ' ', '?', '#']) {
                Ok(o.to_owned())
            } else {
                Err(format!(
                    "`{o}` is not an origin like https://app.example.com (no path, no wildcard)"
                ))
            }
        })
        .collect()
}

/// A `tracing` filter such as `info` or `tessera=debug,actix_web=info`.
fn parse_log_filter(v: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| v.to_owned())
        .map_err(|e| {
            format!("`{v}` is not a log filter like `info` or `tessera=debug,actix_web=info`: {e}")
        })
}

fn parse_postgres_url(v: &str) -> Result<String, String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(v.to_owned())
    } else {
        Err("must be a postgres:// URL".to_owned())
    }
}

fn parse_redis_url(v: &str) -> Result<String, String> {
    redis::parse_redis_url(v)
        .map(|_| v.to_owned())
        .ok_or_else(|| "must be a redis:// or rediss:// URL".to_owned())
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean (true/false)")),
    }
}

fn parse_number_within<T>(v: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("`{v}` is not a whole number from {min} to {max}")),
    }
}

/// A duration: a whole number of seconds, or a number with a unit: `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{v}` is not a duration like 300, 90s, 5m, 12h or 14d"))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{v}` is not a duration like 300, 90s, 5m, 12h or 14d"
            ))
        }
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{v}` is too long"))
}

fn parse_duration_within(v: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d < min || d > max {
        return Err(format!(
            "`{v}` must be between {}s and {}s",
            min.as_secs_f64(),
            max.as_secs_f64()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let s = Settings::from_source(&Source::from_pairs([])).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.access_token_ttl, Duration::from_secs(300));
        assert_eq!(s.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.signing_algorithm, SigningAlgorithm::Es256);
    }

    #[test]
    fn bad_value_names_the_variable() {
        let err = Settings::from_source(&Source::from_pairs([("TESSERA_BCRYPT_COST", "99")]))
            .unwrap_err();
        assert_eq!(err.variable, "TESSERA_BCRYPT_COST");
        assert!(err.to_string().contains("TESSERA_BCRYPT_COST"));
    }

    #[test]
    fn printed_settings_hide_connection_passwords() {
        let s = Settings::from_source(&Source::from_pairs([
            ("DATABASE_URL", "postgres://tessera:s3cret@db:5432/tessera"),
            ("REDIS_URL", "redis://:hunter2@cache:6379"),
        ]))
        .unwrap();
        let shown = format!("{:?}", s.redacted());
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("db:5432/tessera"));
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_variable_list_is_what_the_settings_read() {
        let src = Source::from_pairs([]);
        Settings::from_source(&src).unwrap();
        let mut asked: Vec<String> = src.asked.borrow().iter().cloned().collect();
        asked.push("TESSERA_CONFIG_FILE".to_owned());
        asked.sort();
        asked.dedup();
        let mut listed: Vec<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
        listed.sort();
        assert_eq!(
            asked, listed,
            "VARIABLES must list exactly what Settings reads"
        );
    }

    #[test]
    fn an_unknown_variable_is_reported_with_the_nearest_name() {
        let src =
            Source::from_pairs([("TESSERA_BIDN", "127.0.0.1:1"), ("TESSERA_TEST_REDIS", "x")]);
        Settings::from_source(&src).unwrap();
        assert_eq!(
            src.unknown_variables(),
            vec![UnknownVariable {
                name: "TESSERA_BIDN".to_owned(),
                did_you_mean: Some("TESSERA_BIND".to_owned()),
            }]
        );
    }

    #[test]
    fn a_short_master_key_is_refused_when_read() {
        let err = Settings::from_source(&Source::from_pairs([("TESSERA_MASTER_KEY", "short")]))
            .unwrap_err();
        assert_eq!(err.variable, "TESSERA_MASTER_KEY");
    }

    #[test]
    fn a_broken_log_filter_is_refused_when_read() {
        let err = Settings::from_source(&Source::from_pairs([("TESSERA_LOG", "tessera=loud")]))
            .unwrap_err();
        assert_eq!(err.variable, "TESSERA_LOG");
    }

    #[test]
    fn session_must_outlive_idle_lifetime() {
        let err = Settings::from_source(&Source::from_pairs([
            ("TESSERA_REFRESH_IDLE_TTL", "30d"),
            ("TESSERA_SESSION_MAX_TTL", "14d"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "TESSERA_SESSION_MAX_TTL");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn durations_never_panic(raw in "\\PC{0,30}") {
            let _ = super::parse_duration(&raw);
        }

        #[test]
        fn seconds_parse_as_seconds(n in 0u64..1_000_000) {
            prop_assert_eq!(super::parse_duration(&n.to_string()), Ok(std::time::Duration::from_secs(n)));
        }
    }
}
