//! Typed settings of a [`Verifier`](crate::Verifier), checked once in
//! [`Verifier::new`](crate::Verifier::new).

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use tessera_token::Algorithm;

/// Settings of a [`Verifier`](crate::Verifier). Start with [`VerifierConfig::new`]; every
/// other setting has a production-safe default.
///
/// ```
/// use std::time::Duration;
/// use tessera_verifier::{Algorithm, VerifierConfig};
///
/// let config = VerifierConfig::new("https://auth.example.com", "https://orders.example.com")
///     .algorithms([Algorithm::Es256])
///     .leeway(Duration::from_secs(2));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_url: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: Duration,
    pub(crate) default_cache_lifetime: Duration,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) allow_plain_http: bool,
    pub(crate) introspection: Option<IntrospectionConfig>,
    pub(crate) revocations: Option<RevocationConfig>,
    pub(crate) http_client: Option<reqwest::Client>,
}

impl VerifierConfig {
    /// Tokens must carry exactly `issuer` as `iss` (Tessera's `TESSERA_ISSUER`) and name
    /// `audience` (the identifier of your API) in `aud`. Add more accepted audiences with
    /// [`Self::accept_audience`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            jwks_url: None,
            algorithms: Algorithm::ALL.to_vec(),
            leeway: tessera_token::LEEWAY,
            default_cache_lifetime: Duration::from_secs(5 * 60),
            min_refresh_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(60 * 60),
            http_timeout: Duration::from_secs(5),
            allow_plain_http: false,
            introspection: None,
            revocations: None,
            http_client: None,
        }
    }

    /// Also accept tokens whose `aud` names `audience`.
    pub fn accept_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Where the JWK Set lives. Default: `{issuer}/.well-known/jwks.json`.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The algorithms accepted (default: all of [`Algorithm::ALL`]). A key whose `alg` is
    /// not in the list is ignored, and so is every token that names another algorithm.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long a JWKS response without `Cache-Control: max-age` stays fresh (default
    /// 5 min).
    pub fn default_cache_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_cache_lifetime = lifetime;
        self
    }

    /// The least time between two requests for the JWKS, whatever triggers them: an
    /// unknown `kid`, an expired cache, `no-cache` (default 10 s). This is what keeps a
    /// flood of tokens with made-up `kid`s from turning into a flood of requests to
    /// Tessera.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// How long past its freshness a cached JWKS is still used while Tessera cannot be
    /// reached (stale-if-error, default 1 h). After that, verification fails with
    /// [`VerifyError::JwksUnavailable`](crate::VerifyError::JwksUnavailable) until a
    /// fetch succeeds.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Upper bound on each request to Tessera, connection included (default 5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Allow `http://` URLs to hosts other than loopback. Anyone who can rewrite the JWKS
    /// in transit can mint tokens you accept, so only do this on a network you trust
    /// as much as Tessera itself (default: refused).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Enable [`Verifier::verify_online`](crate::Verifier::verify_online) (RFC 7662
    /// introspection).
    pub fn introspection(mut self, introspection: IntrospectionConfig) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Subscribe to Tessera's revocation feed: a snapshot, then a stream of every new
    /// revocation, kept in memory and checked by every
    /// [`Verifier::verify`](crate::Verifier::verify) with no call per request. Needs a
    /// Tokio runtime when the verifier is built.
    pub fn revocations(mut self, revocations: RevocationConfig) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Use this HTTP client instead of the built-in one (for a private CA, a proxy, ...).
    /// Its own timeouts and redirect policy apply; [`Self::http_timeout`] still bounds
    /// each fetch as a whole.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }
}

/// Credentials of a confidential Tessera client allowed to use the introspection
/// endpoint. The secret is never printed by `Debug`.
#[derive(Clone, Debug)]
pub struct IntrospectionConfig {
    pub(crate) url: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
}

impl IntrospectionConfig {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            url: None,
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
        }
    }

    /// The introspection endpoint. Default: `{issuer}/oauth/introspect`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
}

/// The revocation subscription: a confidential client of Tessera allowed the
/// `tessera:revocations` scope (an administrator grants it), with no registered
/// audiences.
///
/// ```
/// use std::time::Duration;
/// use tessera_verifier::{RevocationConfig, VerifierConfig};
///
/// let config = VerifierConfig::new("https://auth.example.com", "https://orders.example.com")
///     .revocations(RevocationConfig::new("orders-verifier", "cs_...").staleness(Duration::from_secs(30)));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct RevocationConfig {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) base_url: Option<String>,
    pub(crate) staleness: Duration,
    pub(crate) fail_open: bool,
}

impl RevocationConfig {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            base_url: None,
            staleness: Duration::from_secs(30),
            fail_open: false,
        }
    }

    /// Where Tessera answers (`/oauth/token`, `/v1/revocations`...); the issuer by
    /// default.
    pub fn url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// How long the verifier may go without hearing from Tessera (an event or a
    /// heartbeat) before it stops trusting its set: 30 s by default.
    pub fn staleness(mut self, bound: Duration) -> Self {
        self.staleness = bound;
        self
    }

    /// Past the staleness bound, accept tokens the set does not deny (counted in
    /// [`RevocationHealth::stale_accepts`](crate::RevocationHealth)) instead of
    /// refusing every token with [`VerifyError::RevocationsStale`](crate::VerifyError).
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }
}

/// A setting that cannot work. Reported by [`Verifier::new`](crate::Verifier::new).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{what} is not a valid http(s) URL: {reason}")]
    InvalidUrl { what: &'static str, reason: String },
    #[error(
        "{what} uses plain http to a host other than loopback; use https, or allow_plain_http(true) on a network you trust"
    )]
    PlainHttp { what: &'static str },
    #[error(
        "{what} uses https but the `rustls` feature is off; enable it or pass your own http_client"
    )]
    TlsUnavailable { what: &'static str },
    #[error("at least one non-empty audience is required")]
    NoAudience,
    #[error("at least one algorithm must be allowed")]
    NoAlgorithm,
    #[error("{what} must be greater than zero")]
    ZeroDuration { what: &'static str },
    #[error("the introspection client id must not be empty")]
    NoIntrospectionClient,
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    #[error("the revocation client id must not be empty")]
    NoRevocationClient,
    #[error("the revocation subscription needs a Tokio runtime: build the verifier inside one")]
    NoRuntime,
}

/// What [`Verifier::new`](crate::Verifier::new) works with: every URL parsed, every
/// rule checked.
pub(crate) struct Checked {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_url: Url,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub default_cache_lifetime: Duration,
    pub min_refresh_interval: Duration,
    pub max_stale: Duration,
    pub http_timeout: Duration,
    pub introspection: Option<(Url, IntrospectionConfig)>,
    pub revocations: Option<(Url, RevocationConfig)>,
    pub http_client: reqwest::Client,
}

impl VerifierConfig {
    pub(crate) fn check(self) -> Result<Checked, ConfigError> {
        // The issuer is only an identifier, never fetched, so it may be plain http.
        parse_url("the issuer", &self.issuer)?;
        let base = self.issuer.trim_end_matches('/');
        let tls_available = cfg!(feature = "rustls") || self.http_client.is_some();
        let fetchable = |what: &'static str, configured: Option<&str>, default_path: &str| {
            let url = match configured {
                Some(url) => parse_url(what, url)?,
                None => parse_url(what, &format!("{base}{default_path}"))?,
            };
            check_fetchable(what, &url, self.allow_plain_http, tls_available)?;
            Ok::<_, ConfigError>(url)
        };
        let jwks_url = fetchable(
            "the JWKS URL",
            self.jwks_url.as_deref(),
            "/.well-known/jwks.json",
        )?;
        let introspection = match self.introspection {
            None => None,
            Some(settings) => {
                if settings.client_id.is_empty() {
                    return Err(ConfigError::NoIntrospectionClient);
                }
                let url = fetchable(
                    "the introspection URL",
                    settings.url.as_deref(),
                    "/oauth/introspect",
                )?;
                Some((url, settings))
            }
        };
        let revocations = match self.revocations {
            None => None,
            Some(settings) => {
                if settings.client_id.is_empty() {
                    return Err(ConfigError::NoRevocationClient);
                }
                if settings.staleness.is_zero() {
                    return Err(ConfigError::ZeroDuration { what: "staleness" });
                }
                let mut url = match settings.base_url.as_deref() {
                    Some(url) => parse_url("the revocation feed URL", url)?,
                    None => parse_url("the revocation feed URL", base)?,
                };
                check_fetchable(
                    "the revocation feed URL",
                    &url,
                    self.allow_plain_http,
                    tls_available,
                )?;
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                Some((url, settings))
            }
        };

        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::NoAudience);
        }
        let mut algorithms = self.algorithms;
        algorithms.dedup();
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithm);
        }
        for (what, value) in [
            ("min_refresh_interval", self.min_refresh_interval),
            ("http_timeout", self.http_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { what });
            }
        }

        let http_client = match self.http_client {
            Some(client) => client,
            None => build_http_client(self.http_timeout)?,
        };

        Ok(Checked {
            issuer: self.issuer,
            audiences: self.audiences,
            jwks_url,
            algorithms,
            leeway: self.leeway,
            default_cache_lifetime: self.default_cache_lifetime,
            min_refresh_interval: self.min_refresh_interval,
            max_stale: self.max_stale,
            http_timeout: self.http_timeout,
            introspection,
            revocations,
            http_client,
        })
    }
}

fn parse_url(what: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl { what, reason };
    let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("unsupported scheme `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".to_owned()));
    }
    Ok(url)
}

/// Whoever can rewrite what we fetch can choose the keys we trust, so plain http is
/// only for loopback unless explicitly allowed.
fn check_fetchable(
    what: &'static str,
    url: &Url,
    allow_plain_http: bool,
    tls_available: bool,
) -> Result<(), ConfigError> {
    if url.scheme() == "https" && !tls_available {
        return Err(ConfigError::TlsUnavailable { what });
    }
    if url.scheme() == "http" && !allow_plain_http && !is_loopback(url) {
        return Err(ConfigError::PlainHttp { what });
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn build_http_client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    // Redirects are not followed: the JWKS URL is configuration, and following a
    // redirect would let whoever answers at the old address choose our keys.
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera-verifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))
}

// Most examples use https URLs, which need the `rustls` feature.
#[cfg(all(test, feature = "rustls"))]
mod tests {
    use super::*;

    fn check(config: VerifierConfig) -> Result<Checked, ConfigError> {
        config.check()
    }

    #[test]
    fn urls_default_to_the_issuers_well_known_paths() {
        let checked = check(
            VerifierConfig::new("https://auth.example.com/", "api")
                .introspection(IntrospectionConfig::new("svc", "secret")),
        )
        .unwrap();
        assert_eq!(
            checked.jwks_url.as_str(),
            "https://auth.example.com/.well-known/jwks.json"
        );
        assert_eq!(
            checked.introspection.unwrap().0.as_str(),
            "https://auth.example.com/oauth/introspect"
        );
    }

    #[test]
    fn plain_http_is_only_for_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(check(VerifierConfig::new(ok, "api")).is_ok(), "{ok}");
        }
        assert!(matches!(
            check(VerifierConfig::new("http://tessera.internal", "api")),
            Err(ConfigError::PlainHttp { .. })
        ));
        assert!(check(
            VerifierConfig::new("http://tessera.internal", "api").allow_plain_http(true)
        )
        .is_ok());
    }

    #[test]
    fn the_issuer_is_an_identifier_and_may_be_plain_http() {
        let config = VerifierConfig::new("http://tessera.internal", "api")
            .jwks_url("https://tessera.internal/.well-known/jwks.json");
        assert!(check(config).is_ok());
    }

    #[test]
    fn an_audience_is_required() {
        assert!(matches!(
            check(VerifierConfig::new("https://auth.example.com", "")),
            Err(ConfigError::NoAudience)
        ));
    }

    #[test]
    fn an_empty_allow_list_is_refused() {
        assert!(matches!(
            check(VerifierConfig::new("https://auth.example.com", "api").algorithms([])),
            Err(ConfigError::NoAlgorithm)
        ));
    }

    #[test]
    fn a_zero_refresh_interval_is_refused() {
        assert!(matches!(
            check(
                VerifierConfig::new("https://auth.example.com", "api")
                    .min_refresh_interval(Duration::ZERO)
            ),
            Err(ConfigError::ZeroDuration { .. })
        ));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            check(
                VerifierConfig::new("https://auth.example.com", "api")
                    .jwks_url("file:///etc/jwks.json")
            ),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }
}

#[cfg(all(test, not(feature = "rustls")))]
mod tests_without_tls {
    use super::*;

    #[test]
    fn https_needs_the_rustls_feature_or_a_client() {
        let config = VerifierConfig::new("https://auth.example.com", "api");
        assert!(matches!(
            config.clone().check(),
            Err(ConfigError::TlsUnavailable { .. })
        ));
        assert!(config.http_client(reqwest::Client::new()).check().is_ok());
    }
}
