//! Tessera's access tokens: the claims (RFC 9068 §2.2 plus Tessera's own) and the one
//! set of rules that decides whether a token is good. The server verifies its own tokens
//! with this crate, and so does `tessera-verifier` in every microservice.
//!
//! Verification has three steps, so that a caller whose keys must be fetched can do so
//! between the first and the second, and a caller that remembers verified signatures
//! can repeat only the third:
//!
//! 1. [`TokenHeader::parse`]: the shape of the token (at most [`MAX_TOKEN_LEN`], three
//!    base64url segments) and the header rules: `typ` is `at+jwt`, no `crit` (nor JWE's
//!    `enc`/`zip`), `alg` in the caller's allow-list, a `kid`. `jku`, `x5u`, `jwk` and
//!    `x5c` are never even read.
//! 2. [`verify_signature`]: the key is the one the `kid` names in the caller's
//!    [`VerificationKeys`], the header's `alg` is that key's algorithm, the signature
//!    holds, and every required claim is there ([`AccessClaims`]).
//! 3. [`ClaimRules::check`]: `iss` exactly, `exp` and `nbf` with the leeway, and `aud`
//!    naming an accepted audience. These change with time and with who asks.
//!
//! [`verify_signed`] runs the first two for keys that are at hand.

mod algorithm;
mod claims;
mod error;
mod header;
mod verify;

use std::time::Duration;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{AccessClaims, Audience, MissingScope};
pub use error::{IntrospectionError, JwksError, VerifyError};
pub use header::{check_shape, TokenHeader};
pub use verify::{unix_now, verify_signature, verify_signed, ClaimRules, VerificationKeys};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew tolerated on `exp` and `nbf` unless a verifier is configured otherwise.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// Longest token anyone will even try to parse; Tessera's are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
