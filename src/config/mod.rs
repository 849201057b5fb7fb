//! Typed settings, read once at start-up from the environment (12-factor) and,
//! optionally, a TOML file named by `TESSERA_CONFIG_FILE`. The environment wins over
//! the file. Every value is validated here; a bad one stops start-up with an error that
//! names the variable, so the rest of the program never re-checks.
//!
//! `sources` says where raw values come from, `parse` turns text into values, and
//! `sections` (with `secrets`, the two that carry one) holds the settings grouped by
//! concern, each group declaring its own variables (name, default and parser, once).

mod parse;
mod secrets;
mod sections;
mod sources;

use std::sync::LazyLock;

pub use parse::parse_duration;
pub use secrets::{BootstrapAdmin, MasterKeySource};
pub(crate) use sections::{
    Database, Http, Keys, Log, LogFormat, LoginLimits, LoginPage, Passwords, Redis, RevocationFeed,
    Tokens,
};
pub use sources::{Source, UnknownVariable};

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

/// Where the development master key lives, relative to the working directory, when no
/// master key is configured.
pub(crate) const DEVELOPMENT_MASTER_KEY_FILE: &str = ".tessera/master.key";

/// The names of every variable Tessera reads, for `check-config` and the README: what
/// the settings ask a source for, so no second list can drift from the code.
pub static VARIABLES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let src = Source::from_pairs([]);
    // The defaults are valid (a unit test says so); were one not, the list would end
    // at it and the README test would name what is missing.
    let _ = Settings::from_source(&src);
    src.asked()
});

#[derive(Clone, Debug)]
pub struct Settings {
    /// The `iss` of every token and the base of the metadata URLs.
    pub issuer: String,
    pub database: Database,
    pub redis: Redis,
    pub http: Http,
    pub tokens: Tokens,
    pub keys: Keys,
    pub passwords: Passwords,
    pub login_limits: LoginLimits,
    pub login_page: LoginPage,
    pub revocation_feed: RevocationFeed,
    /// Self-registration at `POST /v1/users`.
    pub allow_registration: bool,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    pub log: Log,
}

impl Settings {
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let database = Database::read(src)?;
        let redis = Redis::read(src)?;
        let http = Http::read(src)?;
        let issuer = src.read(
            "TESSERA_ISSUER",
            format!("http://{}", http.bind),
            parse::issuer,
        )?;
        Ok(Self {
            issuer,
            database,
            redis,
            http,
            tokens: Tokens::read(src)?,
            keys: Keys::read(src)?,
            passwords: Passwords::read(src)?,
            login_limits: LoginLimits::read(src)?,
            login_page: LoginPage::read(src)?,
            revocation_feed: RevocationFeed::read(src)?,
            allow_registration: src.read("TESSERA_ALLOW_REGISTRATION", false, parse::boolean)?,
            bootstrap_admin: BootstrapAdmin::read(src)?,
            log: Log::read(src)?,
        })
    }

    /// A copy safe to print: passwords in the connection URLs are masked.
    pub fn redacted(&self) -> Settings {
        let mut shown = self.clone();
        shown.database.url = crate::domain::without_password(&self.database.url);
        shown.redis.endpoint = self.redis.endpoint.redacted();
        shown
    }

    /// The `aud` value of Tessera's own API (`/v1/...`): its issuer identifier.
    pub fn own_audience(&self) -> &str {
        &self.issuer
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::SigningAlgorithm;

    #[test]
    fn defaults_need_no_configuration() {
        let s = Settings::from_source(&Source::from_pairs([])).unwrap();
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.tokens.access_ttl, Duration::from_secs(300));
        assert_eq!(s.tokens.refresh_idle_ttl, Duration::from_secs(14 * 86_400));
        assert_eq!(s.tokens.session_max_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(s.tokens.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(s.passwords.bcrypt_cost, 12);
        assert_eq!(s.keys.algorithm, SigningAlgorithm::Es256);
        assert_eq!(s.keys.publish_ahead, Duration::from_secs(3600));
        assert_eq!(s.database.pool_size, 16);
        assert_eq!(s.redis.prefix, "tessera:");
        assert_eq!(s.http.max_body_bytes, 16 * 1024);
        assert_eq!(s.login_limits.lockout_after, 10);
        assert_eq!(s.log.format, LogFormat::Text);
        assert!(s.bootstrap_admin.is_none());
        assert!(matches!(
            s.keys.master_key,
            MasterKeySource::DevelopmentFile(_)
        ));
    }

    #[test]
    fn the_issuer_defaults_to_the_bind_address() {
        let s =
            Settings::from_source(&Source::from_pairs([("TESSERA_BIND", "0.0.0.0:9000")])).unwrap();
        assert_eq!(s.issuer, "http://0.0.0.0:9000");
    }

    #[test]
    fn bad_value_names_the_variable() {
        let err = Settings::from_source(&Source::from_pairs([("TESSERA_BCRYPT_COST", "99")]))
            .unwrap_err();
        assert_eq!(err.variable, "TESSERA_BCRYPT_COST");
        assert_eq!(
            err.to_string(),
            "invalid configuration: TESSERA_BCRYPT_COST: `99` is not a whole number from 4 to 31"
        );
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
    fn printed_settings_hide_the_master_key_and_the_admin_password() {
        // 32 bytes as 64 hex digits; their value does not matter here.
        let key = "5e".repeat(32);
        let s = Settings::from_source(&Source::from_pairs([
            ("TESSERA_MASTER_KEY", key.as_str()),
            ("TESSERA_BOOTSTRAP_ADMIN", "root"),
            ("TESSERA_BOOTSTRAP_ADMIN_PASSWORD", "correct horse"),
        ]))
        .unwrap();
        let shown = format!("{:#?}", s.redacted());
        assert!(
            !shown.contains(&key) && !shown.contains("correct horse"),
            "{shown}"
        );
    }

    /// The README's configuration table documents exactly the variables read.
    #[test]
    fn the_variable_list_is_the_readme_table() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("a Configuration section");
        let mut documented: Vec<&str> = section
            .lines()
            .take_while(|line| !line.starts_with("## "))
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(name, _)| name))
            .collect();
        documented.sort_unstable();
        let mut listed = VARIABLES.clone();
        listed.sort_unstable();
        assert_eq!(listed, documented);
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

    #[test]
    fn keys_are_published_before_they_sign_and_sign_longer_than_that() {
        let err = Settings::from_source(&Source::from_pairs([
            ("TESSERA_JWKS_MAX_AGE", "1h"),
            ("TESSERA_KEY_PUBLISH_AHEAD", "1h"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "TESSERA_KEY_PUBLISH_AHEAD");
        let err = Settings::from_source(&Source::from_pairs([
            ("TESSERA_KEY_ROTATION_INTERVAL", "1h"),
            ("TESSERA_KEY_PUBLISH_AHEAD", "1h"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "TESSERA_KEY_ROTATION_INTERVAL");
    }

    #[test]
    fn a_lockout_comes_after_the_delays() {
        let err = Settings::from_source(&Source::from_pairs([
            ("TESSERA_LOGIN_DELAY_AFTER", "5"),
            ("TESSERA_LOGIN_LOCKOUT_AFTER", "4"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "TESSERA_LOGIN_LOCKOUT_AFTER");
    }

    #[test]
    fn a_bootstrap_password_needs_its_admin() {
        let err = Settings::from_source(&Source::from_pairs([(
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
            "x",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "TESSERA_BOOTSTRAP_ADMIN_PASSWORD");
    }
}
