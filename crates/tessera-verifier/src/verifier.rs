//! The verification rules for a Tessera access token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tessera_token::{ClaimRules, TokenHeader};

use crate::config::{ConfigError, VerifierConfig};
use crate::introspection::Introspector;
use crate::jwks::JwksCache;
use crate::revocations::{RevocationHealth, Revocations, RevokedEntry};
use crate::{Algorithm, Claims, IntrospectionError, JwksError, VerifyError};

/// Verifies Tessera access tokens against Tessera's JWKS. Cheap to clone (an `Arc`
/// inside): build one at start-up and share it; all clones share one key cache.
///
/// Must be used from within a Tokio runtime (actix-web runs on one).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refresh_interval: Duration,
    jwks: Arc<JwksCache>,
    introspector: Option<Introspector>,
    revocations: Option<Revocations>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algorithms", &self.inner.algorithms)
            .field("jwks_url", &self.inner.jwks.url().as_str())
            .field("introspection", &self.inner.introspector.is_some())
            .field("revocations", &self.inner.revocations.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Checks the configuration and builds the verifier. Nothing is fetched yet: the
    /// JWKS is fetched when first needed, or now with [`Verifier::warm_up`].
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        let checked = config.check()?;
        let jwks = Arc::new(JwksCache::new(&checked));
        let introspector = match &checked.introspection {
            Some((url, settings)) => Some(Introspector::new(
                url.clone(),
                settings,
                checked.http_client.clone(),
                checked.http_timeout,
            )?),
            None => None,
        };
        let revocations = match &checked.revocations {
            Some((url, settings)) => Some(Revocations::start(
                url.clone(),
                settings,
                checked.http_client.clone(),
                checked.http_timeout,
                checked.leeway,
            )?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: checked.issuer,
                audiences: checked.audiences,
                algorithms: checked.algorithms,
                leeway: checked.leeway,
                min_refresh_interval: checked.min_refresh_interval,
                jwks,
                introspector,
                revocations,
            }),
        })
    }

    /// Fetches the JWKS now unless a fresh one is cached, so that the first request
    /// does not wait for it. A failure is not fatal (verification fetches again when
    /// the rate limit allows); log it and carry on, or refuse to start, as you prefer.
    pub async fn warm_up(&self) -> Result<(), JwksError> {
        self.inner.jwks.warm_up().await
    }

    /// Verifies `token` offline (signature from the cached JWKS, then `iss`, `aud`,
    /// `exp`, `nbf`) and returns its claims. With a revocation subscription it is then
    /// checked against the set of revocations in force, in memory.
    ///
    /// The checks, in order, so that nothing is fetched or computed for a token that
    /// can be refused from its header alone: length and shape; `typ` is `at+jwt`; no
    /// `crit`; `alg` is allowed; `kid` names a key of our JWKS (fetched again, within
    /// the rate limit, if not); `alg` equals that key's `alg`; signature; claims. The
    /// rules are `tessera_token`'s, the ones Tessera itself verifies with.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let inner = &self.inner;
        let header = TokenHeader::parse(token, &inner.algorithms)?;
        let keys = inner
            .jwks
            .key_set_for(header.kid())
            .await
            .map_err(VerifyError::JwksUnavailable)?;
        let claims = tessera_token::verify_signature(token, &header, &*keys)?;
        let rules = ClaimRules {
            issuer: &inner.issuer,
            audiences: Some(inner.audiences.as_slice()),
            leeway: inner.leeway,
        };
        rules.check(&claims, tessera_token::unix_now())?;
        if let Some(revocations) = &inner.revocations {
            revocations.check(&claims)?;
        }
        Ok(claims)
    }

    /// Checks claims [`Verifier::verify`] already accepted against the revocation set
    /// again, without the signature: for a long-lived connection (a WebSocket) that
    /// should end when its token is revoked. `Ok` without a subscription.
    pub fn check_revocation(&self, claims: &Claims) -> Result<(), VerifyError> {
        match &self.inner.revocations {
            Some(r) => r.check(claims),
            None => Ok(()),
        }
    }

    /// The revocation subscription's health, if one is configured: serve it from your
    /// readiness endpoint (a stale subscription refuses every token unless it fails
    /// open).
    pub fn revocation_health(&self) -> Option<RevocationHealth> {
        self.inner.revocations.as_ref().map(Revocations::health)
    }

    /// Every revocation the subscription holds, sorted (for diagnostics and tests).
    pub fn revocation_entries(&self) -> Option<Vec<RevokedEntry>> {
        self.inner.revocations.as_ref().map(Revocations::entries)
    }

    /// Waits until the subscription has its first snapshot, for at most `within`;
    /// `true` once it has (also `true` without a subscription).
    pub async fn revocations_ready(&self, within: Duration) -> bool {
        match &self.inner.revocations {
            Some(r) => r.ready(within).await,
            None => true,
        }
    }

    /// [`Verifier::verify`], then asks Tessera (RFC 7662 introspection) whether the
    /// token is still active, to catch revocations before the token expires. Costs a
    /// request to Tessera per call; needs [`VerifierConfig::introspection`].
    pub async fn verify_online(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify(token).await?;
        let introspector =
            self.inner
                .introspector
                .as_ref()
                .ok_or(VerifyError::IntrospectionUnavailable(
                    IntrospectionError::NotConfigured,
                ))?;
        match introspector.is_active(token).await {
            Ok(true) => Ok(claims),
            Ok(false) => Err(VerifyError::Revoked),
            Err(error) => Err(VerifyError::IntrospectionUnavailable(error)),
        }
    }

    /// The issuer tokens must come from.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// A sensible `Retry-After` when verification is unavailable: the next JWKS fetch
    /// is allowed by then.
    pub fn retry_after(&self) -> Duration {
        self.inner.min_refresh_interval.max(Duration::from_secs(1))
    }
}
