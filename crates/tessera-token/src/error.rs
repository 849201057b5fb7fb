//! Why a token was refused, or could not be checked.
//!
//! No message here ever contains the token: the `Display` texts are safe to log and to
//! send back to the caller (the ones for unavailability are generic on purpose; their
//! `source` carries the details for logs).

use jsonwebtoken::errors::ErrorKind;

/// The outcome of a failed verification.
///
/// Two kinds: the caller's fault (the token is bad: answer 401) and ours (the issuer or
/// its JWKS could not be reached: answer 503 and let the caller retry). Use
/// [`VerifyError::is_caller_fault`] or [`VerifyError::status_code`] to tell them apart.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// The header's `alg` differs from the algorithm of the key its `kid` names.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// No `kid`, or a `kid` that names no published key.
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
    /// The issuer says the token is no longer active (revoked, or its session ended).
    #[error("the token has been revoked")]
    Revoked,
    /// No usable JWKS: it could not be fetched and nothing (recent enough) is cached.
    #[error("the token cannot be checked right now: the signing keys are unavailable")]
    JwksUnavailable(#[source] JwksError),
    /// The introspection endpoint could not be asked, or is not configured.
    #[error("the token cannot be checked right now: the issuer could not be asked")]
    IntrospectionUnavailable(#[source] IntrospectionError),
    /// The verifier subscribes to the issuer's revocations and has not heard from it
    /// for longer than its staleness bound: whether the token was revoked is unknown.
    #[error("the token cannot be checked right now: the revocation feed has not been heard from within the staleness bound")]
    RevocationsStale,
}

impl VerifyError {
    /// `true` when the token is at fault (answer 401), `false` when it could not be
    /// checked (answer 503).
    pub fn is_caller_fault(&self) -> bool {
        !matches!(
            self,
            VerifyError::JwksUnavailable(_)
                | VerifyError::IntrospectionUnavailable(_)
                | VerifyError::RevocationsStale
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

    /// What jsonwebtoken's refusal of a token means here. Only the signature and the
    /// algorithm are left to jsonwebtoken; time, issuer and audience are judged by
    /// [`ClaimRules`](crate::ClaimRules), so whatever else it reports is a token that
    /// did not decode.
    pub(crate) fn from_jwt(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature => VerifyError::BadSignature,
            ErrorKind::InvalidAlgorithm => VerifyError::AlgorithmMismatch,
            _ => VerifyError::Malformed,
        }
    }
}

/// Why the JWK Set could not be obtained. Carries the URL (never a token) for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonwebtoken_refusals_map_to_signature_algorithm_or_malformed() {
        assert_eq!(
            VerifyError::from_jwt(&ErrorKind::InvalidSignature),
            VerifyError::BadSignature
        );
        assert_eq!(
            VerifyError::from_jwt(&ErrorKind::InvalidAlgorithm),
            VerifyError::AlgorithmMismatch
        );
        for kind in [
            ErrorKind::InvalidToken,
            ErrorKind::InvalidKeyFormat,
            ErrorKind::InvalidEcdsaKey,
        ] {
            assert_eq!(
                VerifyError::from_jwt(&kind),
                VerifyError::Malformed,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn only_unavailability_is_not_the_callers_fault() {
        assert_eq!(VerifyError::Expired.status_code(), 401);
        assert_eq!(VerifyError::MissingClaim("jti").status_code(), 401);
        let unavailable = VerifyError::JwksUnavailable(JwksError::Stale {
            url: "https://issuer.test/.well-known/jwks.json".to_owned(),
        });
        assert!(!unavailable.is_caller_fault());
        assert_eq!(unavailable.status_code(), 503);
        assert_eq!(
            VerifyError::IntrospectionUnavailable(IntrospectionError::NotConfigured).status_code(),
            503
        );
    }
}
