//! Why a token was refused, or could not be checked.
//!
//! No message here ever contains the token: the `Display` texts are safe to log and to
//! send back to the caller (the ones for unavailability are generic on purpose; their
//! `source` carries the details for logs).

/// The outcome of a failed [`Verifier::verify`](crate::Verifier::verify).
///
/// Two kinds: the caller's fault (the token is bad: answer 401) and ours (Tessera or its
/// JWKS could not be reached: answer 503 and let the caller retry). Use
/// [`VerifyError::is_caller_fault`] or [`VerifyError::status_code`] to tell them apart.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS, too long, bad base64 or JSON, a claim of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// The `typ` header is missing or not `at+jwt` (RFC 9068 §2.1): an ID token or some
    /// other JWT presented as an access token.
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    /// A `crit` header (RFC 7515 §4.1.11): extensions we do not implement make the
    /// token unacceptable.
    #[error("the token uses a critical header extension that is not supported")]
    CriticalHeader,
    /// The header's `alg` is not in the allow-list (`none`, `HS256`, ...).
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header's `alg` differs from the `alg` of the key its `kid` names.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// No `kid`, or a `kid` that is not in the JWKS (even after a refetch, when one was
    /// allowed).
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// A claim every Tessera access token carries is missing.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// Introspection says the token is no longer active (revoked, or its session ended).
    #[error("the token has been revoked")]
    Revoked,
    /// No usable JWKS: it could not be fetched and nothing (recent enough) is cached.
    #[error("the token cannot be checked right now: the signing keys are unavailable")]
    JwksUnavailable(#[source] JwksError),
    /// The introspection endpoint could not be asked, or is not configured.
    #[error("the token cannot be checked right now: the issuer could not be asked")]
    IntrospectionUnavailable(#[source] IntrospectionError),
}

impl VerifyError {
    /// `true` when the token is at fault (answer 401), `false` when we could not check
    /// it (answer 503).
    pub fn is_caller_fault(&self) -> bool {
        !matches!(
            self,
            VerifyError::JwksUnavailable(_) | VerifyError::IntrospectionUnavailable(_)
        )
    }

    /// The HTTP status to answer with: 401 or 503.
    pub fn status_code(&self) -> u16 {
        if self.is_caller_fault() {
            401
        } else {
            503
        }
    }
}

/// Why the JWK Set could not be obtained. Carries the URL (never a token) for logs.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    #[error("could not fetch the JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the JWKS endpoint {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the response of {url} is not a usable JWK Set: {reason}")]
    Invalid { url: String, reason: String },
    /// The cached set is past `max_stale` and the next fetch is not due yet.
    #[error("the JWKS cached from {url} is too old to use and has not been refreshed yet")]
    Stale { url: String },
}

/// Why the introspection endpoint could not give a verdict.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    #[error("introspection is not configured on this verifier")]
    NotConfigured,
    #[error("could not reach the introspection endpoint {url}: {reason}")]
    Request { url: String, reason: String },
    /// 401 here usually means the client id or secret is wrong.
    #[error("the introspection endpoint {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the introspection endpoint {url} answered with something other than an RFC 7662 response: {reason}")]
    Invalid { url: String, reason: String },
}

/// A request error as text, with its causes: reqwest's own `Display` stops at "error
/// sending request", which says nothing about refused connections or certificates.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
